package main

import (
	"context"
	"fmt"
	"io"
	"time"
)

// slow opens o.conns streams on one topic, one in o.slowEvery pausing o.pause after each
// event, and publishes o.events in a burst at full speed. Every stream resumes like
// EventSource when the server ends it. Its figure is how many streams the server cut (or
// that ended otherwise); each must still have received every event, once and in order.
func slow(ctx context.Context, o options, t *target, _ io.Writer) (result, error) {
	conns, events, workers := or(o.conns, 100), or(o.events, 3000), or(o.publishers, 32)
	every := max(o.slowEvery, 1)
	topic := o.topic(0)
	r := result{unit: "streams_cut"}
	isSlow := func(i int) bool { return i%every == 0 }
	var cutBefore uint64
	var cutErr error
	ss, stop, err := openStreams(ctx, t, streamsToOpen{
		n:      conns,
		topic:  func(int) string { return topic },
		resume: true,
		pause: func(i int) time.Duration {
			if isSlow(i) {
				return o.pause
			}
			return 0
		},
		settled: func() { cutBefore, cutErr = t.slowCuts(ctx) },
	}, o.timeout)
	if err != nil {
		return r, err
	}
	defer stop()
	if cutErr != nil {
		return r, cutErr
	}
	var slowOnes, fastOnes []*stream
	for i, s := range ss {
		if isSlow(i) {
			slowOnes = append(slowOnes, s)
		} else {
			fastOnes = append(fastOnes, s)
		}
	}

	p := newPublisher(t, or(o.size, 4096))
	began := time.Now()
	p.run(ctx, pace{workers: workers, count: events, topic: func(int64) string { return topic }})
	published := time.Since(began)
	acked, failed, firstErr, _ := p.outcome()
	want := int64(acked)
	have := func(ss []*stream) func() bool {
		return func() bool { return everyStream(ss, func(s *stream) bool { return s.count.Load() >= want }) }
	}
	fastDone := waitUntil(ctx, o.timeout, have(fastOnes))
	fastIn := time.Since(began)
	allDone := waitUntil(ctx, o.timeout, have(ss))
	allIn := time.Since(began)
	stop()
	cutAfter, _ := t.slowCuts(ctx)
	tl := judgeAll(ss, p.ackedOn)
	slowTally, fastTally := judgeAll(slowOnes, p.ackedOn), judgeAll(fastOnes, p.ackedOn)

	r.value = float64(tl.cutStreams)
	r.ok = fastDone && allDone && tl.ok() && failed == 0
	r.note("streams", conns)
	r.note("slow_streams", len(slowOnes))
	r.note("events", acked)
	r.note("published_in", published)
	r.note("slow_cut", slowTally.cutStreams)
	r.note("fast_cut", fastTally.cutStreams)
	r.note("ends", tl.ends)
	if t.kind != nchan {
		r.note("server_slow_cuts", cutAfter-cutBefore)
	}
	r.note("fast_all_in", fastIn)
	r.note("slow_all_in", allIn)
	tl.note(&r)
	switch {
	case failed > 0:
		return r, fmt.Errorf("%d publishes failed, the first: %w", failed, firstErr)
	case !fastDone || !allDone:
		return r, fmt.Errorf("not every stream received every event within %s", o.timeout)
	}
	return r, nil
}
