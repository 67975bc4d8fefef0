package main

import (
	"context"
	"fmt"
	"io"
	"time"
)

// publishOnly publishes at full speed from many publishers for o.duration, with no stream
// open: what a server stores and acknowledges per second.
func publishOnly(ctx context.Context, o options, t *target, _ io.Writer) (result, error) {
	workers, topics := or(o.publishers, 32), or(o.topics, 10)
	r := result{unit: "publishes/s"}
	p := newPublisher(t, or(o.size, 256))
	began := time.Now()
	p.run(ctx, pace{workers: workers, duration: o.duration, topic: func(n int64) string { return o.topic(int(n) % topics) }})
	took := time.Since(began)
	acked, failed, firstErr, lat := p.outcome()
	r.value = float64(acked) / took.Seconds()
	r.ok = failed == 0
	r.note("publishers", workers)
	r.note("published", acked)
	r.note("latency_p50", pct(lat, 50))
	r.note("latency_p99", pct(lat, 99))
	if failed > 0 {
		return r, fmt.Errorf("%d publishes failed, the first: %w", failed, firstErr)
	}
	return r, nil
}
