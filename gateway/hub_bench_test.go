package gateway

import (
	"fmt"
	"log/slog"
	"sync"
	"testing"

	"github.com/natsse/natsse/natsbus"
)

// BenchmarkHubDispatch measures the fan-out: one event dispatched to subs subscribers
// (each draining its queue on its own goroutine, as a connection does), of whom a tenth
// or all match. It reports deliveries per second.
func BenchmarkHubDispatch(b *testing.B) {
	for _, subs := range []int{100, 1000, 5000} {
		for _, matching := range []string{"all", "tenth"} {
			b.Run(fmt.Sprintf("subs=%d/match=%s", subs, matching), func(b *testing.B) {
				h := newHub(slog.New(slog.DiscardHandler), epochOne, 0, 1024)
				var wg sync.WaitGroup
				matched := 0
				for i := 0; i < subs; i++ {
					topic := "news"
					if matching == "tenth" && i%10 != 0 {
						topic = fmt.Sprintf("other.%d", i)
					} else {
						matched++
					}
					s := newSubscriber([]string{topic}, false, 4096)
					if _, err := h.join(s, 0); err != nil {
						b.Fatal(err)
					}
					wg.Add(1)
					go func() {
						defer wg.Done()
						var batch []*event
						for closed := false; !closed; {
							<-s.queue.ready
							batch, closed = s.queue.take(batch)
						}
					}()
				}
				data := make([]byte, 256)
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					h.dispatch(natsbus.Message{Seq: uint64(i + 1), Topic: "news", Data: data})
				}
				h.close()
				wg.Wait()
				b.StopTimer()
				if cut := h.counters.cut.Load(); cut > 0 {
					b.Logf("%d subscribers cut off", cut)
				}
				b.ReportMetric(float64(matched)*float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
			})
		}
	}
}
