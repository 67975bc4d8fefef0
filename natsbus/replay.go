package natsbus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

const (
	// replayWindow and replayWindowBytes bound what a replay's consumer sends ahead of
	// what the replay has handled (see puller): enough to keep the server busy while the
	// client is written to, little enough for Options.MaxReplays of them at once.
	replayWindow      = 4096
	replayWindowBytes = 4 << 20
)

// TruncatedError reports that a replay could not start where it was asked to: the stream's
// limits removed the events from After+1 to First-1 in the meantime.
type TruncatedError struct{ After, First uint64 }

func (e *TruncatedError) Error() string {
	return fmt.Sprintf("natsbus: history removed: sequences %d to %d are gone", e.After+1, e.First-1)
}

// Replay calls fn, in order, for each stored message that matches one of the topic filters
// and whose sequence s satisfies after < s <= upTo. It stops at the first error fn returns
// and returns it. At most Options.MaxReplays replays (and Latest reads) run at once; the
// others wait.
//
// When the events right after after were removed by the stream's limits, Replay returns a
// *TruncatedError before calling fn. Each replay uses a short-lived consumer that is
// deleted before Replay returns; on a replicated stream, the stream's leader then confirms
// that nothing was missed (see complete.go).
func (b *Bus) Replay(ctx context.Context, filters []string, after, upTo uint64, fn func(Message) error) error {
	for after < upTo {
		last := after
		err := b.replayOnce(ctx, filters, after, upTo, func(m Message) error {
			last = m.Seq
			return fn(m)
		})
		if err != nil || !b.replicated() {
			return err
		}
		// Its consumer's node may lag the leader (see complete.go).
		missed, err := b.missedAfter(ctx, b.subjects(filters), last, upTo)
		if err != nil || missed == 0 {
			return err
		}
		b.log.Info("replay: the consumer's copy of the stream lagged; reading on", "after", last, "next", missed, "up_to", upTo)
		after = last
	}
	return nil
}

// replayOnce is Replay with one consumer, which delivers what its node's copy of the
// stream holds.
func (b *Bus) replayOnce(ctx context.Context, filters []string, after, upTo uint64, fn func(Message) error) error {
	cfg := jetstream.ConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:   after + 1,
	}
	return b.withConsumer(ctx, "replay", filters, cfg, func(cons jetstream.Consumer) error {
		info := cons.CachedInfo()
		if info.Delivered.Stream > after { // the server moved the start up to the first stored
			return &TruncatedError{After: after, First: info.Delivered.Stream + 1}
		}
		return b.drain(ctx, "replay", cons, upTo, fn)
	})
}

// withConsumer takes one of the MaxReplays slots, creates a short-lived consumer of the
// messages that match filters, delivered as cfg says, calls use with it, and deletes it.
// what names the read in errors and logs.
func (b *Bus) withConsumer(ctx context.Context, what string, filters []string, cfg jetstream.ConsumerConfig, use func(jetstream.Consumer) error) error {
	select {
	case b.replays <- struct{}{}:
		defer func() { <-b.replays }()
	case <-ctx.Done():
		return ctx.Err()
	case <-b.closed:
		return ErrClosed
	}
	subjects := b.subjects(filters)
	cfg.AckPolicy = jetstream.AckNonePolicy
	cfg.InactiveThreshold = time.Minute
	cfg.MemoryStorage = true
	cfg.Replicas = 1
	if len(subjects) == 1 {
		cfg.FilterSubject = subjects[0]
	} else {
		cfg.FilterSubjects = subjects
	}
	cons, err := b.createConsumer(ctx, cfg)
	if err != nil {
		return fmt.Errorf("%w: %s consumer: %w", ErrUnavailable, what, err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := b.stream.DeleteConsumer(dctx, cons.CachedInfo().Name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			b.log.Warn(what+": delete consumer", "err", err)
		}
	}()
	return use(cons)
}

// drain calls fn for each message cons delivers, in order, until it has delivered every
// message pending when it was created or one whose sequence is past upTo.
func (b *Bus) drain(ctx context.Context, what string, cons jetstream.Consumer, upTo uint64, fn func(Message) error) error {
	pending := cons.CachedInfo().NumPending
	if pending == 0 {
		return nil
	}
	p, err := b.pull(cons, pullOptions{
		window:    int(min(pending, replayWindow)),
		maxBytes:  replayWindowBytes,
		heartbeat: 2 * time.Second, // silent for 4s: stalled
		expires:   10 * time.Second,
	})
	if err != nil {
		return err
	}
	defer p.stop()
	for delivered := uint64(1); pending > 0; delivered++ {
		m, md, err := p.next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("%w: %s stalled with %d pending: %w", ErrUnavailable, what, pending, err)
		}
		if md.consumerSeq != delivered {
			return fmt.Errorf("%w: %s lost a message (delivery %d, expected %d)", ErrUnavailable, what, md.consumerSeq, delivered)
		}
		pending = md.pending
		if md.streamSeq > upTo {
			return nil
		}
		if err := fn(b.message(m, md)); err != nil {
			return err
		}
	}
	return nil
}

// subjects returns the subjects of topic filters, without those another one covers.
func (b *Bus) subjects(filters []string) []string {
	subjects := make([]string, 0, len(filters))
	for _, f := range ReduceFilters(filters) {
		subjects = append(subjects, b.Subject(f))
	}
	return subjects
}

// createAttempt bounds one request to create a consumer of a stream that can lose a node:
// NATS may place a one-replica consumer on a node that died a moment ago (the others have
// not yet marked it offline), and the request then goes unanswered.
const createAttempt = 5 * time.Second

// createConsumer creates a consumer as cfg says. On a Bus whose stream can lose a node, an
// attempt unanswered within createAttempt is made again, placed anew, until ctx is done;
// a consumer the lost attempt made is removed by the server once inactive.
func (b *Bus) createConsumer(ctx context.Context, cfg jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	if !b.resends {
		return b.stream.CreateConsumer(ctx, cfg)
	}
	for {
		actx, cancel := context.WithTimeout(ctx, createAttempt)
		cons, err := b.stream.CreateConsumer(actx, cfg)
		cancel()
		if err == nil || ctx.Err() != nil || !errors.Is(err, context.DeadlineExceeded) {
			return cons, err
		}
	}
}
