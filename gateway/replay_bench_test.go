package gateway

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/natsse/natsse/natsbus"
	"github.com/natsse/natsse/sseformat"
)

// BenchmarkReplay resumes one client from the start of a stream of 100,000 stored events,
// through the HTTP handler, and reads and decodes them all (the ring holds only the last
// few). It reports events per second, and the CPU time the process spent per event (both
// sides, and less sensitive than the rate to what else runs on the machine); allocs/op
// counts both sides for the whole replay.
func BenchmarkReplay(b *testing.B) {
	const total = 100_000
	e := newTestEnv(b, nil, func(o *natsbus.Options) { o.ClientAddr = "127.0.0.1:0" })
	storeEvents(b, e.bus.ClientURL(), total, func(int) string { return "sse.bench" }, make([]byte, 64))
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	defer client.CloseIdleConnections()
	b.ReportAllocs()
	cpu := cpuTime(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		n, last := readReplay(b, client, e.srv.URL+"/events?topic=bench&last_event_id=earliest", total)
		if n != total || !strings.HasSuffix(last, fmt.Sprintf("-%d", total)) {
			b.Fatalf("replayed %d events, the last %s; want %d", n, last, total)
		}
	}
	b.ReportMetric(float64(total)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(cpuTime(b)-cpu)/float64(total*b.N), "cpu-ns/event")
}

// readReplay opens url and decodes events until it has n of them; it returns how many it
// read and the last id.
func readReplay(b *testing.B, client *http.Client, url string, n int) (int, string) {
	b.Helper()
	ctx, cancel := context.WithCancel(b.Context())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := client.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.Fatalf("status %d", resp.StatusCode)
	}
	dec := sseformat.NewDecoder(resp.Body)
	got, last := 0, ""
	for got < n {
		ev, err := dec.Next()
		if err != nil {
			b.Fatalf("after %d events: %v", got, err)
		}
		got, last = got+1, ev.ID
	}
	return got, last
}

// storeEvents publishes n events with JetStream to the server at url, on the subjects
// subject returns for each index, and waits until all are stored.
func storeEvents(tb testing.TB, url string, n int, subject func(i int) string, data []byte) {
	tb.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		tb.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		tb.Fatal(err)
	}
	for i := 0; i < n; i++ {
		if _, err := js.PublishAsync(subject(i), data); err != nil {
			tb.Fatal(err)
		}
		if i%1000 == 999 || i == n-1 {
			select {
			case <-js.PublishAsyncComplete():
			case <-time.After(2 * time.Minute):
				tb.Fatal("publishing did not complete")
			}
		}
	}
}

// cpuTime returns the CPU time the process has used so far, user and system.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
