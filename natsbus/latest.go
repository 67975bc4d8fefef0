package natsbus

import (
	"context"

	"github.com/nats-io/nats.go/jetstream"
)

// Latest calls fn, in stream order, for the newest stored message of each subject that
// matches one of the topic filters, when that message's sequence is at most upTo. A subject
// whose newest message is past upTo when Latest reads it is left out: a reader that goes on
// after upTo receives that message (and any of the subject's messages after upTo) there, so
// that reading Latest up to upTo and then Replay from upTo sends each message at most once
// and loses none after upTo. Latest stops at the first error fn returns and returns it.
//
// Latest reads JetStream's index of the last message per subject, so its cost grows with the
// number of subjects that match, not with the length of the history. Like Replay, it takes
// one of Options.MaxReplays slots, and a short-lived consumer deleted before it returns.
func (b *Bus) Latest(ctx context.Context, filters []string, upTo uint64, fn func(Message) error) error {
	if upTo == 0 {
		return nil
	}
	cfg := jetstream.ConsumerConfig{DeliverPolicy: jetstream.DeliverLastPerSubjectPolicy}
	return b.withConsumer(ctx, "latest", filters, cfg, func(cons jetstream.Consumer) error {
		// The consumer delivers the last message of each subject in sequence order, then
		// new messages: everything past upTo is for the caller's next read.
		return b.drain(ctx, "latest", cons, upTo, fn)
	})
}
