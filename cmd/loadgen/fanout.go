package main

import (
	"context"
	"fmt"
	"io"
	"time"
)

// fanout opens o.conns streams on one topic and publishes o.events to it at full speed:
// deliveries per second, from the first publish until every stream has every event. A
// stream the server ends resumes like EventSource, from its last event.
func fanout(ctx context.Context, o options, t *target, _ io.Writer) (result, error) {
	conns, events, workers := or(o.conns, 1000), or(o.events, 2000), or(o.publishers, 4)
	topic := o.topic(0)
	r := result{unit: "deliveries/s"}
	ss, stop, err := openStreams(ctx, t, streamsToOpen{n: conns, topic: func(int) string { return topic }, resume: true}, o.timeout)
	if err != nil {
		return r, err
	}
	defer stop()

	p := newPublisher(t, or(o.size, 256))
	began := time.Now()
	p.run(ctx, pace{workers: workers, count: events, topic: func(int64) string { return topic }})
	published := time.Since(began)
	acked, failed, firstErr, _ := p.outcome()
	want := int64(acked)
	done := waitUntil(ctx, o.timeout, func() bool {
		for _, s := range ss {
			if s.count.Load() < want {
				return false
			}
		}
		return true
	})
	took := time.Since(began)
	stop()
	tl := judgeAll(ss, p.ackedOn)

	delivered := receivedBy(ss)
	r.value = float64(delivered) / took.Seconds()
	r.ok = done && tl.ok() && failed == 0
	r.note("streams", conns)
	r.note("events", acked)
	r.note("delivered", delivered)
	r.note("took", took)
	r.note("published_in", published)
	r.note("delivery_p50", pct(tl.latencies, 50))
	r.note("delivery_p99", pct(tl.latencies, 99))
	r.note("resumed", tl.ends)
	tl.note(&r)
	if failed > 0 {
		return r, fmt.Errorf("%d publishes failed, the first: %w", failed, firstErr)
	}
	if !done {
		return r, fmt.Errorf("%d of %d deliveries after %s", delivered, want*int64(conns), o.timeout)
	}
	return r, nil
}
