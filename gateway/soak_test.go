package gateway

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"testing"

	"github.com/natsse/natsse/sseformat"
)

// TestConnectDisconnectSoak opens and drops thousands of streams — live, resumed from the
// ring and resumed from the store — and checks that memory, goroutines and consumers come
// back to where they were.
func TestConnectDisconnectSoak(t *testing.T) {
	cycles := 3000
	if testing.Short() {
		cycles = 300
	}
	e := newTestEnv(t, func(o *Options) { o.RecentEvents = 64 }, nil)
	var ids []string
	for i := 0; i < 200; i++ {
		ids = append(ids, e.publish(t, fmt.Sprintf("soak.%d", i%4), "", "x"))
	}
	cycle := func(i int) {
		from := ""
		switch i % 3 {
		case 1:
			from = ids[len(ids)-10] // in the ring
		case 2:
			from = ids[5] // before the ring: replayed from the store
		}
		// Not e.subscribe: its cleanup would keep every client alive until the test ends.
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.srv.URL+fmt.Sprintf("/events?topic=soak.%d&topic=soak.*", i%4), nil)
		if from != "" {
			req.Header.Set("Last-Event-ID", from)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		dec := sseformat.NewDecoder(resp.Body)
		if from != "" {
			if _, err := dec.Next(); err != nil {
				t.Fatal(err)
			}
		}
	}
	heap := func() uint64 {
		http.DefaultClient.CloseIdleConnections()
		eventually(t, func() bool { return e.gw.Stats().Connections == 0 }, func() string { return "streams still open" })
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapInuse
	}
	for i := 0; i < 100; i++ { // warm up pools and caches
		cycle(i)
	}
	before, goroutines := heap(), runtime.NumGoroutine()
	for i := 0; i < cycles; i++ {
		cycle(i)
	}
	after := heap()
	t.Logf("%d cycles: heap in use %.1f MiB before, %.1f MiB after", cycles, float64(before)/(1<<20), float64(after)/(1<<20))
	if after > before+4<<20 {
		t.Errorf("heap grew by %.1f MiB over %d connect/disconnect cycles", float64(after-before)/(1<<20), cycles)
	}
	checkGoroutines(t, goroutines)
	eventually(t, func() bool {
		n, err := e.bus.Consumers(t.Context())
		return err == nil && n == 1 // the live feed
	}, func() string {
		n, err := e.bus.Consumers(t.Context())
		return fmt.Sprintf("%d consumers on the stream (%v), want only the feed", n, err)
	})
}
