package natsbus

import (
	"sync"
	"sync/atomic"
	"testing"
)

// BenchmarkPublishParallel measures Publish from 32 concurrent callers on an embedded R1
// stream, 128-byte events, reporting publishes per second.
func BenchmarkPublishParallel(b *testing.B) {
	bus := newTestBus(b)
	data := make([]byte, 128)
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ReportAllocs()
	b.ResetTimer()
	for range 32 {
		wg.Go(func() {
			for next.Add(1) <= int64(b.N) {
				if _, err := bus.Publish(b.Context(), Publication{Topic: "bench", Data: data}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "publishes/s")
}
