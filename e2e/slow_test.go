package e2e

import (
	"bufio"
	"context"
	"fmt"
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
// published. The gateway must take that client off the live path (log line, slow_cut in
// /stats) without holding up the publishers or a healthy client, which receives every
// event; when the slow client reads again, it receives every event, in order, on the same
// connection, and then live events.
func TestSlowClient(t *testing.T) {
	t.Parallel()
	forSettings(t, []setting{
		{"from the ring", nil},
		{"from the stream", []string{"GATEWAY_RECENT_EVENTS=0"}},
	}, testSlowClient)
}

func testSlowClient(t *testing.T, set setting) {
	const (
		events     = 2000
		size       = 8 << 10
		publishers = 4
	)
	g := startGateway(t, append([]string{
		"GATEWAY_BUFFER_SIZE=64", // room for a healthy client on a busy machine
		// Long enough that the buffer, not the write timeout, takes the slow client off.
		"GATEWAY_WRITE_TIMEOUT=2m",
	}, set.env...)...)
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

	// The slow one fell behind, once, and the log says so; its connection stays open.
	e := g.waitLog(t, eventTimeout, `"slow client fell behind"`, func(e logEntry) bool {
		return strings.Contains(e.msg(), "slow client fell behind")
	})
	t.Logf("log: %v", e)
	if s := g.stats(t); s.SlowCut != 1 {
		t.Errorf("stats: slow_cut %d, want 1", s.SlowCut)
	}

	// Now it reads: every event, in order, on the same connection, caught up from the
	// stream at its pace; then it is live again.
	dec := sseformat.NewDecoder(slow.resp.Body)
	next := func() sseformat.Event {
		t.Helper()
		slow.conn.SetReadDeadline(time.Now().Add(eventTimeout))
		ev, err := dec.Next()
		if err != nil {
			t.Fatalf("slow client: its stream ended or stalled: %v", err)
		}
		return ev
	}
	for i, want := range ids {
		if ev := next(); ev.ID != want.ID || len(ev.Data) != size || !strings.HasPrefix(ev.Data, prefix[ev.ID]) {
			t.Fatalf("slow client: event %d has id %s, want %s", i, ev.ID, want.ID)
		}
	}
	live := g.publish(t, "big", "", "live")
	if ev := next(); ev.ID != live.ID || ev.Data != "live" {
		t.Fatalf("slow client after catching up: event %s %q, want the live event %s", ev.ID, ev.Data, live.ID)
	}
	if s := g.stats(t); s.SlowCut != 1 || s.Connections != 2 {
		t.Errorf("stats %+v after catching up: want slow_cut 1 and both streams live", s)
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

// TestSlowClientPastRetention: a client that reads nothing while retention removes events
// it has not received gets, when it reads again, what it had, a gap naming what retention
// removed, then every stored event after it and live events: on the same connection.
func TestSlowClientPastRetention(t *testing.T) {
	t.Parallel()
	const events, size, kept = 600, 8 << 10, 50
	g := startGateway(t, "GATEWAY_BUFFER_SIZE=8", "GATEWAY_RECENT_EVENTS=0",
		fmt.Sprintf("GATEWAY_HISTORY_MAX_MSGS=%d", kept), "GATEWAY_WRITE_TIMEOUT=2m")
	slow := dialStream(t, g, "/events?topic=big")
	var last publishResult
	for i := range events {
		last = g.publish(t, "big", "", fmt.Sprintf("%06d:", i)+strings.Repeat("x", size-7))
	}
	g.waitLog(t, eventTimeout, `"slow client fell behind"`, func(e logEntry) bool {
		return strings.Contains(e.msg(), "slow client fell behind")
	})
	epoch := epochOf(t, last.ID)
	dec := sseformat.NewDecoder(slow.resp.Body)
	var prev uint64
	gaps := 0
	for prev < last.Seq {
		slow.conn.SetReadDeadline(time.Now().Add(eventTimeout))
		ev, err := dec.Next()
		if err != nil {
			t.Fatalf("after sequence %d: the stream ended or stalled: %v", prev, err)
		}
		seq, err := seqOf(ev.ID, epoch)
		if err != nil {
			t.Fatal(err)
		}
		if ev.Type == "gap" {
			gaps++
			if !strings.Contains(ev.Data, `"reason":"expired"`) || seq < prev {
				t.Fatalf("gap %s after %d: %s", ev.ID, prev, ev.Data)
			}
			prev = seq
			continue
		}
		if seq != prev+1 {
			t.Fatalf("event %d after %d without a gap between", seq, prev)
		}
		if want := fmt.Sprintf("%06d:", seq-1); !strings.HasPrefix(ev.Data, want) {
			t.Fatalf("event %d: data %.10q, want %q", seq, ev.Data, want)
		}
		prev = seq
	}
	if gaps != 1 {
		t.Errorf("%d gap notices, want 1", gaps)
	}
	live := g.publish(t, "big", "", "live")
	slow.conn.SetReadDeadline(time.Now().Add(eventTimeout))
	if ev, err := dec.Next(); err != nil || ev.ID != live.ID {
		t.Fatalf("after catching up: %+v %v, want the live event %s", ev, err, live.ID)
	}
}
