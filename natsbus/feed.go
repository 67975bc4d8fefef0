package natsbus

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// How the Feed watches its consumer. The server sends a heartbeat every feedHeartbeat
// while it has nothing to deliver; none for two of them is a stall (feedCheck must be longer,
// as each wait for a message watches the heartbeats anew). Each feedCheck without an
// event, the Feed asks whether it is behind; feedStallChecks such answers in a row are a
// stall.
const (
	feedHeartbeat   = time.Second
	feedCheck       = 3 * time.Second
	feedStallChecks = 2
	feedDeleteWait  = 5 * time.Second // for the last consumer, when the Feed closes
	feedRetryMax    = 5 * time.Second // the longest wait between two attempts to resume
	feedHealthy     = time.Minute     // a consumer that lasted this long worked: repairs start afresh
	// feedCreateWait bounds one attempt to create a consumer while repairing: in a cluster
	// that lost a node, a request can go unanswered, and the next attempt may succeed.
	feedCreateWait = 3 * time.Second
	// feedWindow and feedWindowBytes bound what the Feed's consumer sends ahead of what
	// the Feed has delivered (see puller). While publishers keep the stream busy, the
	// server sends the consumer's messages only between batches of stores: a window
	// smaller than such a batch leaves the Feed behind the stream until they stop.
	feedWindow      = 65536
	feedWindowBytes = 8 << 20
)

// errFeedStalled reports a consumer that stopped delivering what the stream holds.
var errFeedStalled = errors.New("natsbus: live feed stalled")

// Feed follows the stream: it delivers every message stored after a given sequence to one
// callback, in stream order, each exactly once. It repairs itself: when its consumer stops
// delivering (an error, missed heartbeats, or the stream moving on without it), it drops
// that consumer and resumes after the last message it delivered.
//
// A gateway process needs exactly one. See the package doc for its goroutine.
type Feed struct {
	b        *Bus
	fn       func(Message)
	last     atomic.Uint64 // the sequence of the last message delivered
	restarts atomic.Uint64
	gone     uint64 // the stream's last sequence when a new consumer saw nothing after last: deleted; run's only

	cancel    context.CancelFunc
	closeOnce sync.Once
	done      chan struct{}
	err       error // why the Feed stopped; written before done is closed
}

// Follow starts a Feed that calls fn for every message with a sequence above after, one at
// a time and in stream order, on the Feed's goroutine. fn must not block for long: the Feed
// waits for it. Follow returns an error when the stream cannot be followed now; once it
// has returned a Feed, the Feed keeps trying until it is closed or its Bus closes.
func (b *Bus) Follow(after uint64, fn func(Message)) (*Feed, error) {
	ctx, cancel := context.WithCancel(context.Background())
	f := &Feed{b: b, fn: fn, cancel: cancel, done: make(chan struct{})}
	f.last.Store(after)
	cons, err := f.newConsumer(ctx, 10*time.Second)
	if err != nil {
		cancel()
		return nil, err
	}
	go f.run(ctx, cons)
	return f, nil
}

// Last returns the sequence of the last message delivered.
func (f *Feed) Last() uint64 { return f.last.Load() }

// Restarts returns how many times the Feed has repaired itself.
func (f *Feed) Restarts() uint64 { return f.restarts.Load() }

// Done returns a channel that is closed when the Feed has stopped for good: after Close,
// or when the Bus's connection closed under it. Err then says why.
func (f *Feed) Done() <-chan struct{} { return f.done }

// Err returns why the Feed stopped, once Done is closed: ErrClosed when the Bus closed
// first; after Close, nil or the error of deleting its consumer.
func (f *Feed) Err() error {
	select {
	case <-f.done:
		return f.err
	default:
		return nil
	}
}

// Close stops the Feed, waits until its goroutine has returned (so fn is not called any
// more) and deletes its consumer from the server. It returns an error when the consumer
// could not be deleted (the server then removes it after 30 s without the Feed). Close is
// idempotent.
func (f *Feed) Close() error {
	f.closeOnce.Do(f.cancel)
	<-f.done
	return f.err
}

// run consumes until the Feed closes, replacing the consumer whenever it stalls.
func (f *Feed) run(ctx context.Context, cons jetstream.Consumer) {
	defer close(f.done)
	var pause time.Duration // grows while repairs do not get the Feed any further
	stuckAt := f.last.Load()
	for {
		began := time.Now()
		err := f.consume(ctx, cons)
		if ctx.Err() != nil { // closed
			f.err = f.deleteConsumer(cons, feedDeleteWait)
			return
		}
		if f.b.closing() {
			f.err = fmt.Errorf("%w: the bus closed before the live feed", ErrClosed)
			return
		}
		f.restarts.Add(1)
		f.b.log.Warn("live feed stalled; resuming after the last event delivered", "after", f.last.Load(), "reason", err)
		f.deleteConsumer(cons, time.Second) // it may live on a node that is gone: do not wait long
		if last := f.last.Load(); last != stuckAt || time.Since(began) > feedHealthy {
			stuckAt, pause = last, 0
		} else if pause = min(2*pause+time.Second, time.Minute); !sleep(ctx, pause) {
			return
		}
		if cons = f.resume(ctx); cons == nil {
			return
		}
	}
}

// resume creates a consumer that starts after the last message delivered, retrying until
// it succeeds or the Feed closes (then it returns nil).
func (f *Feed) resume(ctx context.Context) jetstream.Consumer {
	wait := 250 * time.Millisecond
	for {
		cons, err := f.newConsumer(ctx, feedCreateWait)
		if err == nil {
			return cons
		}
		if ctx.Err() != nil {
			return nil
		}
		if f.b.closing() {
			f.err = fmt.Errorf("%w: the bus closed before the live feed", ErrClosed)
			return nil
		}
		f.b.log.Warn("live feed: cannot resume yet", "after", f.last.Load(), "err", err, "retry_in", wait)
		if !sleep(ctx, wait) {
			return nil
		}
		wait = min(2*wait, feedRetryMax)
	}
}

// newConsumer creates a consumer that starts after the last message delivered, waiting at
// most wait for the answer.
func (f *Feed) newConsumer(ctx context.Context, wait time.Duration) (jetstream.Consumer, error) {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	cons, err := f.b.stream.CreateConsumer(ctx, jetstream.ConsumerConfig{
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       f.last.Load() + 1,
		AckPolicy:         jetstream.AckNonePolicy,
		MemoryStorage:     true,
		Replicas:          1,
		InactiveThreshold: 30 * time.Second,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: live feed consumer: %w", ErrUnavailable, err)
	}
	return cons, nil
}

func (f *Feed) deleteConsumer(cons jetstream.Consumer, wait time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	err := f.b.stream.DeleteConsumer(ctx, cons.CachedInfo().Name)
	if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return fmt.Errorf("natsbus: delete the live feed's consumer: %w", err)
	}
	return nil
}

// consume delivers what cons pulls until ctx is done or cons stalls, and says why it
// stopped.
func (f *Feed) consume(ctx context.Context, cons jetstream.Consumer) error {
	p, err := f.b.pull(cons, pullOptions{
		window:    feedWindow,
		maxBytes:  feedWindowBytes,
		heartbeat: feedHeartbeat,
		expires:   5 * time.Second,
	})
	if err != nil {
		return err
	}
	defer p.stop()
	var delivered uint64 // the consumer's own sequence: a hole means a lost delivery
	suspect := 0
	for {
		period, cancel := context.WithTimeout(ctx, feedCheck)
		got := 0
		for {
			m, md, err := p.next(period)
			if err != nil && m == nil {
				cancel()
				if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
					break // a quiet period
				}
				return err
			}
			got++
			if err != nil {
				// Take it as the next delivery: what it held is skipped, and the hub says so.
				f.b.log.Error("live feed: unreadable message", "subject", m.Subject, "err", err)
				delivered++
				continue
			}
			if md.consumerSeq != delivered+1 {
				cancel()
				return fmt.Errorf("%w: delivery %d after %d", errFeedStalled, md.consumerSeq, delivered)
			}
			delivered = md.consumerSeq
			if md.streamSeq <= f.last.Load() {
				continue
			}
			f.fn(f.b.message(m, md))
			f.last.Store(md.streamSeq)
		}
		if got > 0 {
			suspect = 0
			continue
		}
		if err := f.behind(ctx, cons, delivered); err != nil {
			if errors.Is(err, jetstream.ErrConsumerNotFound) {
				return err
			}
			if suspect++; suspect >= feedStallChecks {
				return err
			}
		} else {
			suspect = 0
		}
	}
}

// behind returns an error when the Feed is behind, although it received nothing for a
// while: its consumer is unreachable, holds messages it does not deliver, sent some that
// never arrived (delivered is how many did), or the stream (as its leader sees it) has
// moved on past what the consumer can see.
//
// A consumer that has delivered nothing yet and sees nothing after the Feed's last
// sequence, while the stream's leader reports more, shows that those were deleted: the
// Feed then waits for sequences after them.
func (f *Feed) behind(ctx context.Context, cons jetstream.Consumer, delivered uint64) error {
	ctx, cancel := context.WithTimeout(ctx, feedCheck)
	defer cancel()
	info, err := cons.Info(ctx)
	if err != nil {
		return fmt.Errorf("%w: consumer info: %w", errFeedStalled, err)
	}
	if info.NumPending > 0 {
		return fmt.Errorf("%w: its consumer holds %d events it does not deliver", errFeedStalled, info.NumPending)
	}
	if info.Delivered.Consumer > delivered {
		return fmt.Errorf("%w: its consumer sent %d events, %d arrived", errFeedStalled, info.Delivered.Consumer, delivered)
	}
	_, last, err := f.b.State(ctx)
	if err != nil || last <= max(f.last.Load(), f.gone) {
		return nil
	}
	if delivered == 0 && info.Delivered.Stream <= f.last.Load() {
		f.gone = last
		return nil
	}
	return fmt.Errorf("%w: the stream is at %d, the feed at %d", errFeedStalled, last, f.last.Load())
}

// sleep waits for d, or until ctx is done; it reports whether it waited the whole time.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
