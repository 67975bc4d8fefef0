package natsbus

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Feed follows the stream: it delivers every message stored after a given sequence, in
// order, to one callback. A gateway process needs exactly one.
type Feed struct {
	b    *Bus
	cons jetstream.Consumer
	cc   jetstream.ConsumeContext
}

// Follow starts a Feed that calls fn for every message with a sequence above after, one at
// a time and in stream order, on a goroutine the Feed owns. fn must not block for long:
// the feed waits for it. Messages that cannot be read are logged and skipped.
func (b *Bus) Follow(after uint64, fn func(Message)) (*Feed, error) {
	cons, err := b.stream.OrderedConsumer(context.Background(), jetstream.OrderedConsumerConfig{
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       after + 1,
		InactiveThreshold: 30 * time.Second,
	})
	if err != nil {
		return nil, fmt.Errorf("natsbus: feed consumer: %w", err)
	}
	f := &Feed{b: b, cons: cons}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		msg, err := b.message(m)
		if err != nil {
			b.log.Error("feed: unreadable message", "subject", m.Subject(), "err", err)
			return
		}
		fn(msg)
	},
		jetstream.PullHeartbeat(time.Second),
		jetstream.PullExpiry(5*time.Second),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			b.log.Debug("feed", "err", err)
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("natsbus: feed consume: %w", err)
	}
	f.cc = cc
	return f, nil
}

// Close stops the feed, waits until its callback has returned for the last time, and
// deletes its consumer from the server.
func (f *Feed) Close() error {
	f.cc.Stop()
	select {
	case <-f.cc.Closed():
	case <-time.After(10 * time.Second):
		f.b.log.Warn("feed: stop timed out")
	}
	if info := f.cons.CachedInfo(); info != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := f.b.stream.DeleteConsumer(ctx, info.Name); err != nil {
			return fmt.Errorf("natsbus: delete feed consumer: %w", err)
		}
	}
	return nil
}
