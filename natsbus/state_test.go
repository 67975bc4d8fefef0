package natsbus

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// countStateRequests counts the requests for the stream's info that b's server receives.
func countStateRequests(t *testing.T, b *Bus) *atomic.Int64 {
	t.Helper()
	var requests atomic.Int64
	sub, err := b.nc.Subscribe("$JS.API.STREAM.INFO."+b.opts.Stream, func(*nats.Msg) { requests.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Unsubscribe() })
	if err := b.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return &requests
}

// TestStateShared: on a deployment the Bus does not run, concurrent State calls share
// requests to the stream, and each answers the stream's state; a call made after an event
// was stored sees it.
func TestStateShared(t *testing.T) {
	t.Parallel()
	server := newTestBus(t, func(o *Options) { o.ClientAddr = "127.0.0.1:0" })
	b := newTestBus(t, func(o *Options) { o.URLs = []string{server.ClientURL()} })
	if b.opts.readsLocalState() {
		t.Fatal("a Bus on an external deployment reads the stream's state in place")
	}
	requests := countStateRequests(t, b)
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

// TestStateLocal: a standalone embedded server's Bus answers State from the store in
// place, with no request, and exactly as the stream's info does: empty, after publishes,
// and after the limits removed events.
func TestStateLocal(t *testing.T) {
	t.Parallel()
	b := newTestBus(t, func(o *Options) { o.MaxMsgs = 5 })
	requests := countStateRequests(t, b)
	check := func(when string, wantFirst, wantLast uint64) {
		t.Helper()
		first, last, err := b.State(t.Context())
		if err != nil || first != wantFirst || last != wantLast {
			t.Errorf("%s: State %d, %d, %v; want %d, %d", when, first, last, err, wantFirst, wantLast)
		}
		info, err := b.info(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if info.State.LastSeq != last || (info.State.FirstSeq != first && info.State.FirstSeq != 0) {
			t.Errorf("%s: State %d, %d; the stream's info says %d, %d", when, first, last, info.State.FirstSeq, info.State.LastSeq)
		}
	}
	check("empty", 1, 0)
	for range 3 {
		check("after a publish", 1, publish(t, b, "a", "", "x"))
	}
	var last uint64
	for range 9 {
		last = publish(t, b, "a", "", "x")
	}
	check("after the limits removed events", last-4, last)
	// The info requests above are check's own. The subscription counts them in order, on a
	// goroutine of its own: once it has counted a marker request sent after them, it has
	// counted them all.
	if err := b.nc.Publish("$JS.API.STREAM.INFO."+b.opts.Stream, nil); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for requests.Load() < 6 && time.Now().Before(deadline) {
		<-time.After(10 * time.Millisecond) // polling interval
	}
	if n := requests.Load() - 1; n != 5 {
		t.Errorf("%d requests for the stream's info, want only check's 5", n)
	}
	b.Close()
	if _, _, err := b.State(t.Context()); err != ErrClosed {
		t.Errorf("State after Close: %v, want ErrClosed", err)
	}
}
