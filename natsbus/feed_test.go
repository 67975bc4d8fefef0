package natsbus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

// feedWait bounds the wait for a Feed to deliver, repair included: a repair takes a few
// seconds of quiet by design.
const feedWait = 30 * time.Second

// follow starts a Feed that sends every message after after to the channel it returns (of
// 100), and closes it at the end of the test.
func follow(t testing.TB, b *Bus, after uint64) (*Feed, <-chan Message) {
	t.Helper()
	got := make(chan Message, 100)
	f, err := b.Follow(after, func(m Message) { got <- m })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f, got
}

// receive reads n messages from got and returns their sequences.
func receive(t testing.TB, got <-chan Message, n int) []uint64 {
	t.Helper()
	seqs := make([]uint64, 0, n)
	deadline := time.After(feedWait)
	for len(seqs) < n {
		select {
		case m := <-got:
			seqs = append(seqs, m.Seq)
		case <-deadline:
			t.Fatalf("received %d of %d messages: %v", len(seqs), n, seqs)
		}
	}
	return seqs
}

// feedConsumer returns the name of the one consumer on the stream: the feed's.
func feedConsumer(t testing.TB, b *Bus) string {
	t.Helper()
	var names []string
	for name := range b.stream.ConsumerNames(t.Context()).Name() {
		names = append(names, name)
	}
	if len(names) != 1 {
		t.Fatalf("consumers on the stream: %v, want the feed's only", names)
	}
	return names[0]
}

// seqRange returns from, from+1, …, to.
func seqRange(from, to uint64) []uint64 {
	var s []uint64
	for q := from; q <= to; q++ {
		s = append(s, q)
	}
	return s
}

// TestFeedRepairs takes the feed's consumer away from under it, in the ways a consumer
// fails, and checks that the feed resumes exactly after the last message it delivered:
// every sequence once, in order, with the messages stored while it was stalled.
func TestFeedRepairs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		stall func(t *testing.T, b *Bus, consumer string)
	}{
		{"consumer deleted", func(t *testing.T, b *Bus, consumer string) {
			if err := b.stream.DeleteConsumer(t.Context(), consumer); err != nil {
				t.Fatal(err)
			}
		}},
		// A paused consumer keeps its pull requests and answers no error: it just stops
		// delivering, as one does whose node is gone.
		{"consumer silent", func(t *testing.T, b *Bus, consumer string) {
			if _, err := b.stream.PauseConsumer(t.Context(), consumer, time.Now().Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := newTestBus(t)
			f, got := follow(t, b, 0)
			for i := 0; i < 5; i++ {
				publish(t, b, "a", "", fmt.Sprint(i))
			}
			before := receive(t, got, 5)
			tc.stall(t, b, feedConsumer(t, b))
			for i := 5; i < 20; i++ {
				publish(t, b, "a", "", fmt.Sprint(i))
			}
			after := receive(t, got, 15)
			if all := append(before, after...); !slices.Equal(all, seqRange(1, 20)) {
				t.Fatalf("delivered %v, want 1..20 once each", all)
			}
			if f.Restarts() == 0 {
				t.Fatal("the feed delivered everything without repairing itself: the stall was not one")
			}
			// The callback delivered 20; Last says so once it has returned.
			deadline := time.Now().Add(10 * time.Second)
			for f.Last() != 20 && time.Now().Before(deadline) {
				<-time.After(10 * time.Millisecond) // polling interval
			}
			if f.Last() != 20 {
				t.Fatalf("Last() = %d, want 20", f.Last())
			}
			select {
			case m := <-got:
				t.Fatalf("an extra message after the repair: %d", m.Seq)
			default:
			}
			t.Logf("repaired %d time(s)", f.Restarts())
		})
	}
}

// TestFeedCloseStopsCallbacks closes a feed while messages keep coming: once Close has
// returned, the callback is never called again, and Done is closed.
func TestFeedCloseStopsCallbacks(t *testing.T) {
	t.Parallel()
	b := newTestBus(t)
	var closed, late atomic.Bool
	calls := make(chan struct{}, 1)
	f, err := b.Follow(0, func(Message) {
		if closed.Load() {
			late.Store(true)
		}
		select {
		case calls <- struct{}{}:
		default:
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	publishing := make(chan struct{})
	go func() {
		defer close(publishing)
		for ctx.Err() == nil {
			b.Publish(ctx, Publication{Topic: "a", Data: []byte("x")})
		}
	}()
	<-calls // the feed is delivering
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	closed.Store(true)
	select {
	case <-f.Done():
	default:
		t.Fatal("Done is open after Close returned")
	}
	if f.Err() != nil {
		t.Fatalf("Err() = %v after Close, want nil", f.Err())
	}
	publish(t, b, "a", "", "after close")
	cancel()
	<-publishing
	if late.Load() {
		t.Fatal("the callback ran after Close returned")
	}
	if err := f.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// TestFeedBusClosed closes the Bus under a running feed: the feed stops for good and says
// why, and Close still returns.
func TestFeedBusClosed(t *testing.T) {
	t.Parallel()
	b := newTestBus(t)
	f, _ := follow(t, b, 0)
	b.Close()
	select {
	case <-f.Done():
	case <-time.After(feedWait):
		t.Fatal("the feed still runs after its Bus closed")
	}
	if !errors.Is(f.Err(), ErrClosed) {
		t.Fatalf("Err() = %v, want ErrClosed", f.Err())
	}
	if err := f.Close(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Close() = %v, want ErrClosed", err)
	}
	if f.Restarts() != 0 {
		t.Fatalf("the feed took its Bus's closing for a stall (%d repairs)", f.Restarts())
	}
}

// TestFeedBehind checks the feed's judgement of a quiet consumer: events deleted after its
// position are not a stall, events its consumer holds back are.
func TestFeedBehind(t *testing.T) {
	t.Parallel()
	b := newTestBus(t)
	publish(t, b, "a", "", "1")
	publish(t, b, "a", "", "2")
	if err := b.stream.DeleteMsg(t.Context(), 2); err != nil {
		t.Fatal(err)
	}
	f := &Feed{b: b}
	f.last.Store(1)
	cons, err := f.newConsumer(t.Context(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.behind(t.Context(), cons, 0); err != nil {
		t.Fatalf("with the stream's last event deleted: %v, want not behind", err)
	}
	if err := f.behind(t.Context(), cons, 0); err != nil {
		t.Fatalf("asked again: %v, want not behind", err)
	}
	// An event the consumer holds but did not deliver: behind.
	if _, err := b.stream.PauseConsumer(t.Context(), cons.CachedInfo().Name, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	publish(t, b, "a", "", "3")
	if err := f.behind(t.Context(), cons, 0); !errors.Is(err, errFeedStalled) {
		t.Fatalf("with an event held back: %v, want errFeedStalled", err)
	}
}
