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

func (b *Bus) message(m jetstream.Msg) (Message, error) {
	md, err := m.Metadata()
	if err != nil {
		return Message{}, err
	}
	return Message{
		Seq:   md.Sequence.Stream,
		Topic: b.topicOf(m.Subject()),
		Type:  m.Headers().Get(HeaderEvent),
		Data:  m.Data(),
		Time:  md.Timestamp,
	}, nil
}

func (b *Bus) topicOf(subject string) string {
	return strings.TrimPrefix(subject, b.opts.SubjectPrefix+".")
}
