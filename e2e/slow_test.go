package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/natsse/natsse/sseformat"
)

// TestSlowClient opens a stream that reads nothing while thousands of large events are
// published. The gateway must cut that client off (log line, slow_cut in /stats) without
// holding up the publishers or a healthy client, which receives every event; the slow
// client, resuming from the last event it got, then receives exactly what it missed.
func TestSlowClient(t *testing.T) {
	t.Parallel()
	const (
		events     = 2000
		size       = 8 << 10
		publishers = 4
	)
	g := startGateway(t,
		"GATEWAY_BUFFER_SIZE=64", // room for a healthy client on a busy machine
		// Long enough that the buffer, not the write timeout, cuts the slow client off.
		"GATEWAY_WRITE_TIMEOUT=2m",
	)
	healthy := g.subscribe(t, "topic=big")
	slow := dialStream(t, g, "/events?topic=big")

	// Publish from a few goroutines; the events arrive in stream order, whatever the
	// order of the answers.
	began := time.Now()
	ids := make([]publishResult, events) // by publication, then by sequence
	prefix := make(map[string]string)    // the start of each event's data, by id
	var wg sync.WaitGroup
	errs := make(chan error, publishers)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	for p := range publishers {
		wg.Go(func() {
			for i := p; i < events; i += publishers {
				data := fmt.Sprintf("%06d:", i) + strings.Repeat(string(rune('a'+i%26)), size-7)
				res, err := g.tryPublish(ctx, "big", "", data, "")
				if err != nil {
					errs <- err
					return
				}
				ids[i] = res
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("publish: %v", err)
	}
	t.Logf("published %d events of %d bytes in %s while a client did not read", events, size, time.Since(began))
	for i, r := range ids {
		prefix[r.ID] = fmt.Sprintf("%06d:", i)
	}
	slices.SortFunc(ids, func(a, b publishResult) int { return int(a.Seq) - int(b.Seq) })
	for i, r := range ids {
		if r.Seq != uint64(i+1) {
			t.Fatalf("sequence %d answered for publication %d", r.Seq, i)
		}
	}

	// The healthy client gets everything, in order.
	for i, want := range ids {
		ev := healthy.next(t)
		if ev.ID != want.ID || len(ev.Data) != size || !strings.HasPrefix(ev.Data, prefix[ev.ID]) {
			t.Fatalf("healthy client: event %d: id %s (%d bytes), want %s", i, ev.ID, len(ev.Data), want.ID)
		}
	}
	t.Logf("healthy client had every event %s after publishing began", time.Since(began))

	// The slow one was cut off, once, and told so in the log.
	e := g.waitLog(t, eventTimeout, `"slow client cut off"`, func(e logEntry) bool {
		return strings.Contains(e.msg(), "slow client cut off")
	})
	t.Logf("log: %v", e)
	if s := g.stats(t); s.SlowCut != 1 {
		t.Errorf("stats: slow_cut %d, want 1", s.SlowCut)
	}

	// Now it reads what it was sent, up to the end of the stream: a prefix of the events.
	got, err := slow.readAll(60 * time.Second)
	if err != nil {
		t.Fatalf("slow client: reading its stream after the cut: %v", err)
	}
	if len(got) >= events {
		t.Fatalf("slow client got all %d events: it was not cut off", len(got))
	}
	for i, ev := range got {
		if ev.ID != ids[i].ID || len(ev.Data) != size || !strings.HasPrefix(ev.Data, prefix[ev.ID]) {
			t.Fatalf("slow client: event %d has id %s, want %s", i, ev.ID, ids[i].ID)
		}
	}
	t.Logf("slow client got %d events before the cut", len(got))

	// It resumes from its last event and gets exactly the rest.
	var resumed *sseStream
	if len(got) == 0 {
		resumed = g.subscribe(t, "topic=big&last_event_id=earliest")
	} else {
		resumed = g.subscribeFrom(t, "topic=big", got[len(got)-1].ID)
	}
	for i := len(got); i < events; i++ {
		ev := resumed.next(t)
		if ev.ID != ids[i].ID || len(ev.Data) != size || !strings.HasPrefix(ev.Data, prefix[ev.ID]) {
			t.Fatalf("resumed slow client: event %d: id %s, want %s", i, ev.ID, ids[i].ID)
		}
	}
	resumed.expectQuiet(t, 100*time.Millisecond)
	if s := g.stats(t); s.SlowCut != 1 {
		t.Errorf("stats: slow_cut %d after the resume, want still 1", s.SlowCut)
	}
}

// rawStream is a stream read over a raw TCP connection with a tiny receive buffer, so
// that the gateway's writes block as soon as the client stops reading.
type rawStream struct {
	conn net.Conn
	br   *bufio.Reader
	resp *http.Response
}

// dialStream sends GET path on a new connection and reads the response headers, and
// nothing more.
func dialStream(tb testing.TB, g *gatewayProc, path string) *rawStream {
	tb.Helper()
	d := smallReceiveBuffer()
	d.Timeout = 10 * time.Second
	conn, err := d.DialContext(tb.Context(), "tcp", g.httpAddr)
	if err != nil {
		tb.Fatalf("dial: %v", err)
	}
	tb.Cleanup(func() { conn.Close() })
	req, err := http.NewRequest(http.MethodGet, g.url(path), nil)
	if err != nil {
		tb.Fatal(err)
	}
	if err := req.Write(conn); err != nil {
		tb.Fatalf("write request: %v", err)
	}
	conn.SetReadDeadline(time.Now().Add(eventTimeout))
	br := bufio.NewReaderSize(conn, 1024)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		tb.Fatalf("read response: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("GET %s: %s", path, resp.Status)
	}
	conn.SetReadDeadline(time.Time{})
	return &rawStream{conn: conn, br: br, resp: resp}
}

// readAll decodes the stream's events until its end.
func (r *rawStream) readAll(timeout time.Duration) ([]sseformat.Event, error) {
	r.conn.SetReadDeadline(time.Now().Add(timeout))
	dec := sseformat.NewDecoder(r.resp.Body)
	var evs []sseformat.Event
	for {
		ev, err := dec.Next()
		if err == io.EOF {
			return evs, nil
		}
		if err != nil {
			return evs, err
		}
		evs = append(evs, ev)
	}
}

// smallReceiveBuffer is a dialer whose connections have a 4 KiB receive buffer, so that a
// slow reader makes the gateway's writes block soon.
func smallReceiveBuffer() *net.Dialer {
	return &net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
		if err != nil {
			return err
		}
		return serr
	}}
}
