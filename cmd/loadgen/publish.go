package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// publishOnly publishes at full speed from many publishers for o.duration, with no stream
// open: what a server stores and acknowledges per second. Each publisher has a kept-alive
// connection of its own and one publish in flight (no pipelining: browsers do not), sends
// pre-built requests and reads only the status and body of the answers, so that the figure
// is the server's rather than the client's; every publish must be answered as stored
// (natsse: 200).
func publishOnly(ctx context.Context, o options, t *target, _ io.Writer) (result, error) {
	workers, topics := or(o.publishers, 32), or(o.topics, 10)
	r := result{unit: "publishes/s"}
	reqs, urls := make([][]byte, topics), make([]string, topics)
	data := bytes.Repeat([]byte("x"), or(o.size, 256))
	for i := range reqs {
		urls[i] = t.publishURL(o.topic(i))
		req, err := postRequest(urls[i], data)
		if err != nil {
			return r, err
		}
		reqs[i] = req
	}
	posters := make([]*poster, workers)
	for i := range posters {
		p, err := dialPoster(ctx, t.base)
		if err != nil {
			return r, err
		}
		defer p.close()
		posters[i] = p
	}
	var (
		stopped atomic.Bool // set by the first failure
		mu      sync.Mutex
		total   postCounts
		wg      sync.WaitGroup
	)
	began := time.Now()
	until := began.Add(o.duration)
	for i, p := range posters {
		wg.Go(func() {
			var c postCounts
			for n := i; !stopped.Load() && ctx.Err() == nil; n++ {
				start := time.Now()
				if start.After(until) {
					break
				}
				status, body, err := p.post(ctx, reqs[n%topics])
				c.add(status, t.stored(status), body, err, time.Since(start), urls[n%topics])
				if c.failed > 0 {
					stopped.Store(true)
				}
			}
			mu.Lock()
			total.merge(c)
			mu.Unlock()
		})
	}
	wg.Wait()
	took := time.Since(began)
	r.value = float64(total.ok) / took.Seconds()
	r.ok = total.failed == 0
	r.note("publishers", workers)
	r.note("published", total.ok)
	r.note("latency_p50", pct(total.latencies, 50))
	r.note("latency_p99", pct(total.latencies, 99))
	if total.failed > 0 {
		return r, fmt.Errorf("%d publishes failed, the first: %w", total.failed, total.firstErr)
	}
	return r, nil
}
