package gateway

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// BenchmarkHTTPPublishParallel measures stored HTTP publishes from 32 concurrent
// publishers, each on a keep-alive connection of its own, without rate limit. It reports
// publishes per second: each counted publish was answered 200, so stored.
func BenchmarkHTTPPublishParallel(b *testing.B) {
	const publishers = 32
	e := newTestEnv(b, func(o *Options) { o.PublishRate = 0 }, nil)
	url := e.srv.URL + "/publish/bench.parallel"
	clients := make([]*http.Client, publishers)
	for i := range clients {
		clients[i] = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true}}
		b.Cleanup(clients[i].CloseIdleConnections)
	}
	payload := strings.Repeat("x", 128)
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ReportAllocs()
	b.ResetTimer()
	for _, client := range clients {
		wg.Go(func() {
			for next.Add(1) <= int64(b.N) {
				resp, err := client.Post(url, "text/plain", strings.NewReader(payload))
				if err != nil {
					b.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Errorf("publish: status %d", resp.StatusCode)
					return
				}
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "publishes/s")
}
