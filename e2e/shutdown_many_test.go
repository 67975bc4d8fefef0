package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/natsse/natsse/sseformat"
)

// manyStreams is how many streams TestShutdownManyStreams holds open: this process and the
// gateway each hold one socket per stream.
const manyStreams = 3000

// shutdownPromise is how long README says a shutdown with idle streams takes ("well under
// a second"); the test allows three times as much.
const shutdownPromise = time.Second

// TestShutdownManyStreams stops a gateway that has thousands of open streams: it exits
// within three times README's promise and loses nothing — after a restart, every client
// resumes from its last id and receives exactly what was published while it was away.
func TestShutdownManyStreams(t *testing.T) {
	dir := t.TempDir()
	g := startGatewayIn(t, dir)
	settings := []string{"GATEWAY_HTTP_ADDR=" + g.httpAddr}
	const topics = 10
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: manyStreams}}
	defer client.CloseIdleConnections()

	type reader struct {
		topic string
		mu    sync.Mutex
		ids   []string
	}
	readers := make([]*reader, manyStreams)
	var ended sync.WaitGroup
	// open subscribes r from its last id and reads until the stream ends.
	open := func(ctx context.Context, r *reader, base string) error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/events?topic="+r.topic, nil)
		r.mu.Lock()
		if n := len(r.ids); n > 0 {
			req.Header.Set("Last-Event-ID", r.ids[n-1])
		}
		r.mu.Unlock()
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		ended.Add(1)
		go func() {
			defer ended.Done()
			defer resp.Body.Close()
			dec := sseformat.NewDecoder(bufio.NewReaderSize(resp.Body, 512))
			for {
				ev, err := dec.Next()
				if err != nil {
					return
				}
				r.mu.Lock()
				r.ids = append(r.ids, ev.ID)
				r.mu.Unlock()
			}
		}()
		return nil
	}
	for i := range readers {
		readers[i] = &reader{topic: fmt.Sprintf("many.%d", i%topics)}
		if err := open(t.Context(), readers[i], g.base); err != nil {
			t.Fatalf("stream %d: %v", i, err)
		}
	}
	pollUntil(t, time.Minute, "every stream joined", func() bool { return g.stats(t).Connections == manyStreams })

	// Before: one event per topic reaches every stream.
	var want []map[string][]string // per phase, topic -> ids
	publishRound := func(g *gatewayProc) {
		ids := make(map[string][]string)
		for k := 0; k < topics; k++ {
			topic := fmt.Sprintf("many.%d", k)
			ids[topic] = append(ids[topic], g.publish(t, topic, "", "x").ID)
		}
		want = append(want, ids)
	}
	publishRound(g)
	received := func() bool {
		for _, r := range readers {
			r.mu.Lock()
			n := len(r.ids)
			r.mu.Unlock()
			if n < len(want) {
				return false
			}
		}
		return true
	}
	pollUntil(t, time.Minute, "every stream received the first event", received)

	limit := cpuBound(3 * shutdownPromise)
	code, took := g.stop(t)
	if code != 0 {
		t.Fatalf("gateway exited with %d", code)
	}
	t.Logf("gateway with %d open streams stopped in %s", manyStreams, took.Round(time.Millisecond))
	if took > limit {
		t.Errorf("gateway with %d open streams took %s to stop, want at most %s", manyStreams, took.Round(time.Millisecond), limit)
	}
	endWait := make(chan struct{})
	go func() { ended.Wait(); close(endWait) }()
	select {
	case <-endWait:
	case <-time.After(time.Minute):
		t.Fatal("streams did not end after the gateway stopped")
	}

	// While the clients are away, publish on a restarted gateway, then let them resume.
	g = startGatewayIn(t, dir, settings...)
	publishRound(g)
	for i, r := range readers {
		if err := open(t.Context(), r, g.base); err != nil {
			t.Errorf("stream %d resume: %v", i, err)
		}
	}
	pollUntil(t, time.Minute, "every stream received the event published while it was away", received)
	for i, r := range readers {
		r.mu.Lock()
		got := fmt.Sprint(r.ids)
		r.mu.Unlock()
		wantIDs := fmt.Sprint([]string{want[0][r.topic][0], want[1][r.topic][0]})
		if got != wantIDs {
			t.Fatalf("stream %d: ids %s, want %s", i, got, wantIDs)
		}
	}
	code, took = g.stop(t)
	if code != 0 {
		t.Fatalf("gateway exited with %d", code)
	}
	t.Logf("and again in %s", took.Round(time.Millisecond))
	if took > limit {
		t.Errorf("restarted gateway with %d open streams took %s to stop, want at most %s", manyStreams, took.Round(time.Millisecond), limit)
	}
}
