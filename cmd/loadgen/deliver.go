package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// deliver opens the streams spread over the topics, waits until the server holds them
// all, publishes at o.rate for o.duration and checks that every stream received exactly
// the events of its topic, in order. Its figure is deliveries per second of publishing.
func deliver(ctx context.Context, o options, t *target, out io.Writer) (result, error) {
	conns, topics, rate := or(o.conns, 1000), or(o.topics, 10), or(o.rate, 1000)
	r := result{unit: "deliveries/s"}
	ss, stop, m, err := openMeasured(ctx, t, streamsToOpen{
		n:     conns,
		topic: func(i int) string { return o.topic(i % topics) },
	}, o.pid, o.timeout)
	if err != nil {
		return r, err
	}
	defer stop()
	fmt.Fprintf(out, "streams open:     %d (joined in %s)\n", conns, m.in.Round(time.Millisecond))
	if perStream, ok := m.perStream(conns); ok {
		fmt.Fprintf(out, "server memory:    %.1f MiB before, %.1f MiB with the streams: %.1f KiB per stream\n",
			mib(m.before), mib(m.after), perStream)
	}

	p := newPublisher(t, or(o.size, 256))
	p.run(ctx, pace{workers: 16, rate: rate, duration: o.duration, topic: func(n int64) string { return o.topic(int(n) % topics) }})
	published, failed, pubErr, pubLat := p.outcome()
	want := make(map[string]int)
	for i := range topics {
		want[o.topic(i)] = p.ackedCount(o.topic(i))
	}
	waitUntil(ctx, 30*time.Second, func() bool {
		for _, s := range ss {
			if s.count.Load() < int64(want[s.topic]) {
				return false
			}
		}
		return true
	})
	stop()
	tl := judgeAll(ss, p.ackedOn)

	delivered := receivedBy(ss)
	fmt.Fprintf(out, "published:        %d events at %.0f/s target, %d bytes each\n", published, rate, or(o.size, 256))
	fmt.Fprintf(out, "publish latency:  p50 %s  p99 %s\n", pct(pubLat, 50), pct(pubLat, 99))
	fmt.Fprintf(out, "delivered:        %d events (%.0f/s)\n", delivered, float64(delivered)/o.duration.Seconds())
	fmt.Fprintf(out, "delivery latency: p50 %s  p99 %s\n", pct(tl.latencies, 50), pct(tl.latencies, 99))
	fmt.Fprintf(out, "streams exact:    %d of %d (%d missing events, %d extra, %d out of order, %d stream errors)\n",
		tl.exact, tl.streams, tl.total.missing, tl.total.extra, tl.total.disorder, tl.errors)

	r.value = float64(delivered) / o.duration.Seconds()
	r.ok = tl.ok() && failed == 0
	r.note("streams", conns)
	r.note("target_rate", rate)
	r.note("published", published)
	r.note("publish_p50", pct(pubLat, 50))
	r.note("publish_p99", pct(pubLat, 99))
	r.note("delivery_p50", pct(tl.latencies, 50))
	r.note("delivery_p99", pct(tl.latencies, 99))
	tl.note(&r)
	if failed > 0 {
		return r, errors.Join(fmt.Errorf("%d publishes failed", failed), pubErr)
	}
	return r, nil
}
