package main

import (
	"context"
	"fmt"
	"io"
	"time"
)

// replay publishes o.events events on one topic, then opens one stream that resumes after
// the first of them and reads all the others: events read per second, from the request
// to the last event, which must all arrive once and in order.
func replay(ctx context.Context, o options, t *target, _ io.Writer) (result, error) {
	events, workers := or(o.events, 100000), or(o.publishers, 32)
	topic := o.topic(0)
	r := result{unit: "events/s"}
	p := newPublisher(t, or(o.size, 256))
	// The first event alone, so that the id acknowledged is its own.
	first, err := p.publish(ctx, topic)
	if err != nil {
		return r, err
	}
	began := time.Now()
	p.run(ctx, pace{workers: workers, count: events - 1, topic: func(int64) string { return topic }})
	published := time.Since(began)
	acked, failed, firstErr, _ := p.outcome()
	if failed > 0 {
		return r, fmt.Errorf("%d of %d publishes failed, the first: %w", failed, events, firstErr)
	}
	want := p.ackedOn(topic)[1:] // every event but the first, index 0

	s := &stream{t: t, topic: topic, lastID: first}
	began = time.Now()
	stop := runStreams(ctx, []*stream{s})
	defer stop()
	done := waitUntil(ctx, o.timeout, func() bool { return s.count.Load() >= int64(len(want)) })
	took := time.Since(began)
	stop()
	tl := judgeAll([]*stream{s}, func(string) []int64 { return want })
	r.value = float64(s.count.Load()) / took.Seconds()
	r.ok = done && tl.ok()
	r.note("events", len(want))
	r.note("read_in", took)
	r.note("published_per_s", int(float64(acked)/published.Seconds()))
	tl.note(&r)
	if !done {
		return r, fmt.Errorf("%d of %d events read after %s", s.count.Load(), len(want), o.timeout)
	}
	return r, nil
}
