package main

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"
)

// storm opens o.conns streams over the topics while events are published at o.rate, drops
// them all at once, keeps them away for o.away while publishing goes on, and reconnects
// them all at once, each with the id of the last event it received. Its figure is the
// time from the reconnection until every stream is back and has every event acknowledged
// before it; then publishing stops and every stream must have every event of its topic,
// once and in order.
func storm(ctx context.Context, o options, t *target, _ io.Writer) (result, error) {
	conns, topics, rate := or(o.conns, 5000), or(o.topics, 50), or(o.rate, 200)
	r := result{unit: "s"}
	ss, stop, err := openStreams(ctx, t, streamsToOpen{n: conns, topic: func(i int) string { return o.topic(i % topics) }}, o.timeout)
	if err != nil {
		return r, err
	}
	defer func() { stop() }()

	p := newPublisher(t, or(o.size, 256))
	enough := make(chan struct{})
	published := make(chan struct{})
	go func() {
		defer close(published)
		p.run(ctx, pace{workers: 8, rate: rate, until: enough, topic: func(n int64) string { return o.topic(int(n) % topics) }})
	}()
	stopPublishing := sync.OnceFunc(func() { close(enough); <-published })
	defer stopPublishing()
	// Each stream needs an event to resume from: a stream without one would start again
	// from the next event published.
	if !waitUntil(ctx, o.timeout, func() bool { return everyStream(ss, func(s *stream) bool { return s.count.Load() > 0 }) }) {
		return r, fmt.Errorf("not every stream received an event within %s", o.timeout)
	}

	stop() // every connection closed at once
	dropped := time.Now()
	select {
	case <-ctx.Done():
		return r, ctx.Err()
	case <-time.After(o.away):
	}
	due := make(map[string]int64) // per topic, the events acknowledged before the reconnection
	for i := range topics {
		due[o.topic(i)] = int64(p.ackedCount(o.topic(i)))
	}
	for _, s := range ss {
		s.resume = true
	}
	back := time.Now()
	stop = runStreams(ctx, ss)
	allBack := waitUntil(ctx, o.timeout, func() bool {
		return everyStream(ss, func(s *stream) bool { return s.connected.Load() >= back.UnixNano() })
	})
	backIn := time.Since(back)
	caughtUp := waitUntil(ctx, o.timeout, func() bool {
		return everyStream(ss, func(s *stream) bool { return s.count.Load() >= due[s.topic] })
	})
	caughtUpIn := time.Since(back)

	stopPublishing()
	acked, failed, firstErr, _ := p.outcome()
	want := make(map[string]int64)
	for i := range topics {
		want[o.topic(i)] = int64(p.ackedCount(o.topic(i)))
	}
	done := waitUntil(ctx, o.timeout, func() bool {
		return everyStream(ss, func(s *stream) bool { return s.count.Load() >= want[s.topic] })
	})
	stop()
	tl := judgeAll(ss, p.ackedOn)

	r.value = caughtUpIn.Seconds()
	r.ok = allBack && caughtUp && done && tl.ok() && failed == 0
	r.note("streams", conns)
	r.note("away", back.Sub(dropped))
	r.note("back_in", backIn)
	r.note("caught_up_in", caughtUpIn)
	r.note("published", acked)
	r.note("resumed_again", tl.ends)
	tl.note(&r)
	switch {
	case !allBack:
		return r, fmt.Errorf("not every stream reconnected within %s", o.timeout)
	case !caughtUp || !done:
		return r, fmt.Errorf("not every stream caught up within %s", o.timeout)
	case failed > 0:
		return r, fmt.Errorf("%d publishes failed, the first: %w", failed, firstErr)
	}
	return r, nil
}

func everyStream(ss []*stream, cond func(*stream) bool) bool {
	for _, s := range ss {
		if !cond(s) {
			return false
		}
	}
	return true
}
