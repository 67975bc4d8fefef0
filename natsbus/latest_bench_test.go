package natsbus

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkLatest reads the newest event of each of 10k topics out of a history of 1M
// events, with the filter ">", and compares it with a replay of the same history: Latest's
// cost follows the number of topics, a replay's the number of events.
func BenchmarkLatest(b *testing.B) {
	const (
		events = 1_000_000
		topics = 10_000
		window = 2048 // publishes in flight, under nats.go's default limit of 4000
	)
	bus := newTestBus(b)
	data := make([]byte, 64)
	start := time.Now()
	for i := 0; i < events; i++ {
		if _, err := bus.js.PublishAsync(bus.Subject(fmt.Sprintf("t.%d", i%topics)), data); err != nil {
			b.Fatal(err)
		}
		if (i+1)%window == 0 || i+1 == events {
			select {
			case <-bus.js.PublishAsyncComplete():
			case <-time.After(time.Minute):
				b.Fatal("publishes not acknowledged in time")
			}
		}
	}
	_, last, err := bus.State(b.Context())
	if err != nil || last != events {
		b.Fatalf("stream holds %d events (%v), want %d", last, err, events)
	}
	b.Logf("stored %d events over %d topics in %v", events, topics, time.Since(start).Round(time.Millisecond))

	filters := []string{">"}
	read := func(b *testing.B, want int, fn func(func(Message) error) error) {
		for b.Loop() {
			n := 0
			if err := fn(func(Message) error { n++; return nil }); err != nil {
				b.Fatal(err)
			}
			if n != want {
				b.Fatalf("%d events read, want %d", n, want)
			}
		}
		b.ReportMetric(float64(want), "events/op")
	}
	b.Run("latest", func(b *testing.B) {
		read(b, topics, func(fn func(Message) error) error {
			return bus.Latest(b.Context(), filters, last, fn)
		})
	})
	b.Run("replay", func(b *testing.B) {
		read(b, events, func(fn func(Message) error) error {
			return bus.Replay(b.Context(), filters, 0, last, fn)
		})
	})
}
