package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// resumers runs clients, each on its own goroutine, until they have caught up with the
// stream.
type resumers struct {
	clients []*resumer
	cancel  context.CancelFunc
	finish  chan struct{} // closed when clients should catch up to their target and stop
	done    chan struct{}
}

// runResumers starts clients; they hurry once finish is closed. They are stopped when the
// test ends.
func runResumers(tb testing.TB, clients []*resumer) *resumers {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	rs := &resumers{clients: clients, cancel: cancel, finish: make(chan struct{}), done: make(chan struct{})}
	var wg sync.WaitGroup
	for _, c := range clients {
		c.hurry = rs.finish
		wg.Go(func() { c.run(ctx, func() bool { return c.caughtUp(rs.finish) }) })
	}
	go func() { wg.Wait(); close(rs.done) }()
	tb.Cleanup(func() {
		cancel()
		<-rs.done
	})
	return rs
}

// catchUp sets each client's target to the last event of its filters in stream, lets
// them read up to it, and waits for them. After timeout it stops them, waits, and reports
// false.
func (rs *resumers) catchUp(stream []storedMsg, timeout time.Duration) bool {
	for _, c := range rs.clients {
		c.target = lastMatching(stream, c.filters)
	}
	close(rs.finish)
	select {
	case <-rs.done:
		return true
	case <-time.After(timeout):
		rs.cancel()
		<-rs.done
		return false
	}
}

// waitEach waits until every client has received n more events than counted in base.
func (rs *resumers) waitEach(tb testing.TB, timeout time.Duration, n int64, base []int64, what string) {
	tb.Helper()
	if behind := rs.tryWaitEach(timeout, n, base); len(behind) > 0 {
		tb.Fatalf("timed out after %s waiting for %s:\n%s", timeout, what, strings.Join(behind, "\n"))
	}
}

// tryWaitEach waits until every client has received n more events than counted in base,
// or timeout; it returns the clients still waiting then.
func (rs *resumers) tryWaitEach(timeout time.Duration, n int64, base []int64) []string {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		var behind []string
		for i, c := range rs.clients {
			if got := c.received.Load(); got < base[i]+n {
				behind = append(behind, fmt.Sprintf("subscriber %d %v: %d of %d events, %s",
					i, c.filters, got-base[i], n, c.doing()))
			}
		}
		if len(behind) == 0 || time.Now().After(deadline) {
			return behind
		}
		<-tick.C
	}
}

// counts returns how many events each client has received so far.
func (rs *resumers) counts() []int64 {
	out := make([]int64, len(rs.clients))
	for i, c := range rs.clients {
		out[i] = c.received.Load()
	}
	return out
}

// deliveryStall returns the longest interval without an event that any client (with
// detail) saw overlapping [from, to], the client's index, and when it began.
func (rs *resumers) deliveryStall(from, to time.Time) (time.Duration, int, time.Time) {
	var longest time.Duration
	var who int
	var began time.Time
	for i, c := range rs.clients {
		if d, at := longestGap(c.times, from, to); d > longest {
			longest, who, began = d, i, at
		}
	}
	return longest, who, began
}

// longestGap returns the longest interval between consecutive times (in order) that
// overlaps [from, to], and when it began.
func longestGap(times []time.Time, from, to time.Time) (time.Duration, time.Time) {
	var longest time.Duration
	var began time.Time
	for i := 1; i < len(times); i++ {
		a, b := times[i-1], times[i]
		if b.Before(from) || a.After(to) {
			continue
		}
		if d := b.Sub(a); d > longest {
			longest, began = d, a
		}
	}
	return longest, began
}
