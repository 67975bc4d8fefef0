package gateway

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/natsse/natsse/natsbus"
	"github.com/natsse/natsse/sseformat"
)

// BenchmarkFeedKeepsUp publishes 200,000 events with core NATS from 4 connections at full
// speed, spread over topics, while 100 SSE clients read them (each topic has
// 100/topics readers). It reports the rate at which the stream stored them and the rate at
// which the live feed dispatched them, both from the first publish; and the rate at which
// the readers received theirs; and the CPU time the process spent per event stored.
func BenchmarkFeedKeepsUp(b *testing.B) {
	for _, topics := range []int{100, 10} {
		b.Run(fmt.Sprintf("topics=%d", topics), func(b *testing.B) {
			benchmarkFeed(b, 4, 200_000, 100, topics)
		})
	}
}

func benchmarkFeed(b *testing.B, publishers, total, readers, topics int) {
	e := newTestEnv(b, nil, func(o *natsbus.Options) { o.ClientAddr = "127.0.0.1:0" })
	client := &http.Client{Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: readers}}
	defer client.CloseIdleConnections()
	var received atomic.Int64
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(b.Context())
	defer func() { cancel(); wg.Wait() }()
	for i := 0; i < readers; i++ {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/events?topic=feed.%d", e.srv.URL, i%topics), nil)
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer resp.Body.Close()
			dec := sseformat.NewDecoder(resp.Body)
			for {
				if _, err := dec.Next(); err != nil {
					return
				}
				received.Add(1)
			}
		}()
	}
	eventually(b, func() bool { return e.gw.Stats().Connections == int64(readers) }, func() string { return "readers did not join" })
	conns := make([]*nats.Conn, publishers)
	for i := range conns {
		nc, err := nats.Connect(e.bus.ClientURL())
		if err != nil {
			b.Fatal(err)
		}
		defer nc.Close()
		conns[i] = nc
	}
	data := make([]byte, 128)
	var stored, dispatched, delivered, cpu []float64
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		_, start, err := e.bus.State(b.Context())
		if err != nil {
			b.Fatal(err)
		}
		received.Store(0)
		cpuBefore := cpuTime(b)
		began := time.Now()
		var pubs sync.WaitGroup
		for p, nc := range conns {
			pubs.Add(1)
			go func() {
				defer pubs.Done()
				for i := p; i < total; i += publishers {
					if err := nc.Publish(fmt.Sprintf("sse.feed.%d", i%topics), data); err != nil {
						b.Error(err)
						return
					}
				}
				nc.Flush()
			}()
		}
		s := watchFeed(b, e, start, &pubs)
		want := int64(s.last-start) * int64(readers) / int64(topics)
		eventually(b, func() bool { return received.Load() >= want || e.gw.Stats().SlowCut > 0 }, func() string {
			return fmt.Sprintf("readers received %d of %d", received.Load(), want)
		})
		got := time.Since(began)
		if s.last-start < uint64(total) {
			b.Logf("the stream stored %d of %d events", s.last-start, total)
		}
		stored = append(stored, float64(s.last-start)/s.stored.Seconds())
		dispatched = append(dispatched, float64(s.last-start)/s.dispatched.Seconds())
		delivered = append(delivered, float64(received.Load())/got.Seconds())
		cpu = append(cpu, float64(cpuTime(b)-cpuBefore)/float64(s.last-start))
	}
	b.StopTimer()
	if cut := e.gw.Stats().SlowCut; cut > 0 {
		b.Logf("%d readers cut off as too slow", cut)
	}
	if n := e.gw.feed.Restarts(); n > 0 {
		b.Logf("the live feed repaired itself %d times", n)
	}
	b.ReportMetric(median(stored), "stored/s")
	b.ReportMetric(median(dispatched), "dispatched/s")
	b.ReportMetric(median(delivered), "received/s")
	b.ReportMetric(median(cpu), "cpu-ns/event")
}

// feedTimes says how long the stream took to store what was published, and the feed to
// dispatch it, both from the first publish.
type feedTimes struct {
	last               uint64 // the stream's last sequence once publishing is over
	stored, dispatched time.Duration
}

// watchFeed samples the stream's last sequence and the hub's position until the publishers
// are done, the stream has stopped growing and the hub has caught up with it.
func watchFeed(b *testing.B, e *testEnv, start uint64, pubs *sync.WaitGroup) feedTimes {
	b.Helper()
	began := time.Now()
	published := make(chan struct{})
	go func() { pubs.Wait(); close(published) }()
	var t feedTimes
	t.last = start
	deadline := time.Now().Add(5 * time.Minute)
	quietSince := began
	for time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond) // a sampling interval, not a synchronisation
		_, last, err := e.bus.State(b.Context())
		if err != nil {
			b.Fatal(err)
		}
		now := time.Now()
		if last != t.last {
			t.last, t.stored, t.dispatched, quietSince = last, now.Sub(began), 0, now
		}
		if t.dispatched == 0 && e.gw.hub.position() >= t.last {
			t.dispatched = now.Sub(began)
		}
		select {
		case <-published:
			if now.Sub(quietSince) > 500*time.Millisecond && t.dispatched != 0 {
				return t
			}
		default:
		}
	}
	b.Fatalf("the feed did not catch up: stream at %d, hub at %d", t.last, e.gw.hub.position())
	return t
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
