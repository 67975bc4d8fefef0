package natsbus

import (
	"strings"
	"time"

	"github.com/nats-io/nats.go"
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

// message is m, whose reply subject says md, as a Message.
func (b *Bus) message(m *nats.Msg, md ackMeta) Message {
	return Message{
		Seq:   md.streamSeq,
		Topic: b.topicOf(m.Subject),
		Type:  m.Header.Get(HeaderEvent),
		Data:  m.Data,
		Time:  md.stored,
	}
}

func (b *Bus) topicOf(subject string) string {
	return strings.TrimPrefix(subject, b.opts.SubjectPrefix+".")
}
