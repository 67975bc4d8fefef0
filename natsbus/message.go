package natsbus

import (
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// HeaderEvent is the NATS header that carries an event's SSE type.
const HeaderEvent = "Sse-Event"

// Message is one stored event.
type Message struct {
	Seq   uint64    // stream sequence
	Topic string    // subject without the prefix
	Type  string    // the Sse-Event header, "" when absent
	Data  []byte    // the payload; owned by the Message, never modified
	Time  time.Time // when the stream stored it
}

// message is m, whose metadata is md, as a Message.
func (b *Bus) message(m jetstream.Msg, md *jetstream.MsgMetadata) Message {
	return Message{
		Seq:   md.Sequence.Stream,
		Topic: b.topicOf(m.Subject()),
		Type:  m.Headers().Get(HeaderEvent),
		Data:  m.Data(),
		Time:  md.Timestamp,
	}
}

func (b *Bus) topicOf(subject string) string {
	return strings.TrimPrefix(subject, b.opts.SubjectPrefix+".")
}
