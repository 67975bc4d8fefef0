package main

import (
	"context"
	"fmt"
	"time"
)

// streamsToOpen says which streams openStreams opens.
type streamsToOpen struct {
	n      int
	topic  func(i int) string        // the topic of stream i
	resume bool                      // every stream resumes like EventSource when it ends
	pause  func(i int) time.Duration // stream i's pause after each event; nil: none pause
	// settled, when set, runs once the server's count of open streams has settled and
	// before the streams connect.
	settled func()
	// opening bounds the streams connecting at once (0: all at once), as browsers arriving
	// over time would; a stream counts as connecting until its response's headers arrive.
	opening int
}

// openStreams opens the streams want describes, each running in a goroutine of its own,
// and returns once the server counts them all open (then the next event published
// reaches every one). stop ends them and returns once they have all returned; it may be
// called again. When the streams do not all open within timeout, openStreams stops them
// and fails.
func openStreams(ctx context.Context, t *target, want streamsToOpen, timeout time.Duration) (ss []*stream, stop func(), err error) {
	base, err := settledOpen(ctx, t)
	if err != nil {
		return nil, nil, err
	}
	if want.settled != nil {
		want.settled()
	}
	var gate chan struct{}
	if want.opening > 0 {
		gate = make(chan struct{}, want.opening)
	}
	ss = make([]*stream, want.n)
	for i := range ss {
		ss[i] = &stream{t: t, topic: want.topic(i), resume: want.resume, gate: gate}
		if want.pause != nil {
			ss[i].pause = want.pause(i)
		}
	}
	stop = runStreams(ctx, ss)
	if err := waitOpen(ctx, t, base+int64(want.n), timeout); err != nil {
		stop()
		return nil, nil, err
	}
	return ss, stop, nil
}

// opened is what opening streams cost the server: how long it took, and its memory before
// and with them (0 when it cannot be read).
type opened struct {
	in            time.Duration
	before, after int64
}

// perStream is the server's memory per stream opened, in KiB, or false if it is unknown.
func (o opened) perStream(n int) (float64, bool) {
	if o.before == 0 || o.after == 0 {
		return 0, false
	}
	return float64(o.after-o.before) / 1024 / float64(n), true
}

// openMeasured is openStreams that also measures what the streams cost the server whose
// process is pid: its memory is read once the count of open streams has settled, and again
// once the streams are all open.
func openMeasured(ctx context.Context, t *target, want streamsToOpen, pid int, timeout time.Duration) ([]*stream, func(), opened, error) {
	var o opened
	var began time.Time
	want.settled = func() { o.before, began = memory(pid), time.Now() }
	ss, stop, err := openStreams(ctx, t, want, timeout)
	if err != nil {
		return nil, nil, o, err
	}
	o.in = time.Since(began)
	o.after = memory(pid)
	return ss, stop, o, nil
}

// settledOpen returns how many streams the server holds open once that number has
// stopped falling: the streams of an earlier run may still be closing.
func settledOpen(ctx context.Context, t *target) (int64, error) {
	prev, err := t.openStreams(ctx)
	for i := 0; err == nil && i < 50; i++ {
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		var n int64
		if n, err = t.openStreams(ctx); err == nil && n >= prev {
			return n, nil
		}
		prev = n
	}
	return prev, err
}

// waitOpen waits until the server holds want streams open.
func waitOpen(ctx context.Context, t *target, want int64, timeout time.Duration) error {
	var open int64
	ok := waitUntil(ctx, timeout, func() bool {
		open, _ = t.openStreams(ctx)
		return open >= want
	})
	if !ok {
		return fmt.Errorf("%d of %d streams open after %s", open, want, timeout)
	}
	return nil
}
