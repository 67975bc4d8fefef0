package natsbus

import (
	"sync"
	"sync/atomic"
	"testing"

	"github.com/nats-io/nats.go"
)

// TestStateShared: concurrent State calls share requests to the stream, and each answers
// the stream's state; a call made after an event was stored sees it.
func TestStateShared(t *testing.T) {
	t.Parallel()
	b := newTestBus(t)
	var requests atomic.Int64
	sub, err := b.nc.Subscribe("$JS.API.STREAM.INFO."+b.opts.Stream, func(*nats.Msg) { requests.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := b.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	last := publish(t, b, "a", "", "x")

	const calls = 200
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range calls {
		wg.Go(func() {
			<-start
			first, got, err := b.State(t.Context())
			if err != nil || first != 1 || got != last {
				t.Errorf("State: first %d, last %d, %v; want 1, %d", first, got, err, last)
			}
		})
	}
	close(start)
	wg.Wait()
	if err := b.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	n := requests.Load()
	t.Logf("%d concurrent State calls sent %d requests", calls, n)
	if n < 1 || n >= calls/2 {
		t.Errorf("%d concurrent State calls sent %d requests: want them shared", calls, n)
	}

	// Once an event is stored, a State call made after that sees it.
	last = publish(t, b, "a", "", "y")
	if _, got, err := b.State(t.Context()); err != nil || got != last {
		t.Errorf("State after a publish: last %d, %v; want %d", got, err, last)
	}
}
