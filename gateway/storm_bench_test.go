package gateway

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/natsse/natsse/natsbus"
	"github.com/natsse/natsse/sseformat"
)

// BenchmarkResumeStorm reconnects streams all at once through the HTTP handler, each with
// the id of an event 20 events back on its topic (the ring holds them), and waits until
// every one has caught up. It reports resumes per second, and the CPU time the process
// spent per resume (both sides: less sensitive than the rate to what else runs).
func BenchmarkResumeStorm(b *testing.B) {
	const (
		streams = 1000
		topics  = 50
		stored  = 2000
		back    = 20 // events of its topic each stream catches up on
	)
	e := newTestEnv(b, nil, func(o *natsbus.Options) { o.ClientAddr = "127.0.0.1:0" })
	storeEvents(b, e.bus.ClientURL(), stored, func(i int) string { return fmt.Sprintf("sse.storm.t%d", i%topics) }, make([]byte, 64))
	eventually(b, func() bool { return e.gw.Stats().LastSeq >= stored }, func() string { return "events not dispatched" })
	id := func(i int) string { return position{epoch: e.bus.Epoch(), seq: uint64(i + 1)}.String() }
	client := &http.Client{Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: -1}}
	defer client.CloseIdleConnections()
	b.ReportAllocs()
	cpu := cpuTime(b)
	b.ResetTimer()
	for range b.N {
		var wg sync.WaitGroup
		errs := make(chan error, streams)
		for s := range streams {
			wg.Go(func() {
				topic := s % topics
				last := stored - topics + topic // the topic's last event
				if err := catchUpFrom(b.Context(), client, e.srv.URL+fmt.Sprintf("/events?topic=storm.t%d", topic), id(last-back*topics), id(last)); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(streams*b.N)/b.Elapsed().Seconds(), "resumes/s")
	b.ReportMetric(float64(cpuTime(b)-cpu)/1e3/float64(streams*b.N), "cpu-µs/resume")
}

// catchUpFrom opens url with Last-Event-ID lastID and reads events until the one with id
// until; then it closes the stream.
func catchUpFrom(ctx context.Context, client *http.Client, url, lastID, until string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	req.Header.Set("Last-Event-ID", lastID)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	dec := sseformat.NewDecoder(resp.Body)
	for {
		ev, err := dec.Next()
		if err != nil {
			return fmt.Errorf("resumed from %s, before %s: %w", lastID, until, err)
		}
		if ev.ID == until {
			return nil
		}
	}
}
