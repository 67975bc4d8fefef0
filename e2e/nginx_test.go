package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/natsse/natsse/sseformat"
)

// TestNginxReadmeBlock checks README's nginx location block, which the tests behind nginx
// run: it is where they read it, holds what README says it does, and takes the test's
// gateway address and read timeout. It needs no nginx.
func TestNginxReadmeBlock(t *testing.T) {
	t.Parallel()
	block, err := readmeNginxLocation()
	if err != nil {
		t.Fatal(err)
	}
	for _, directive := range []string{
		"proxy_http_version 1.1;",
		"proxy_set_header Connection '';",
		"proxy_set_header Host $host;",
		"proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
		"proxy_buffering off;",
		"proxy_cache off;",
		"proxy_read_timeout 1h;",
	} {
		if !strings.Contains(block, directive) {
			t.Errorf("README's nginx block lacks %q:\n%s", directive, block)
		}
	}
	got, err := nginxLocation("127.0.0.1:1234", "3s")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(got, "proxy_pass http://127.0.0.1:1234;") || !strings.Contains(got, "proxy_read_timeout 3s;") ||
		strings.Contains(got, "8080") || strings.Contains(got, "1h") {
		t.Errorf("the test's block:\n%s", got)
	}
}

// TestNginx runs the gateway behind nginx configured with README's location block.
func TestNginx(t *testing.T) {
	t.Parallel()
	requireNginx(t)
	t.Run("events unbuffered", func(t *testing.T) {
		t.Parallel()
		testNginxUnbuffered(t)
	})
	t.Run("idle stream outlives proxy_read_timeout", func(t *testing.T) {
		t.Parallel()
		testNginxIdle(t)
	})
	t.Run("resume with Last-Event-ID", func(t *testing.T) {
		t.Parallel()
		testNginxResume(t)
	})
	t.Run("nginx restart", func(t *testing.T) {
		t.Parallel()
		testNginxRestart(t)
	})
}

// testNginxUnbuffered publishes events one at a time, spaced apart, on an otherwise quiet
// stream: each must come through nginx within a second of its publish. A buffering proxy
// would hold them until its buffer fills or the stream ends.
func testNginxUnbuffered(t *testing.T) {
	const (
		events  = 5
		spacing = 300 * time.Millisecond
		within  = time.Second
	)
	g := startGateway(t)
	n := startNginx(t, g.httpAddr, "")
	s := subscribeURL(t, n.client, n.url("/events?topic=quiet"), streamOpts{})
	for i := range events {
		<-time.After(spacing) // the events' spacing, not synchronisation
		began := time.Now()
		res := g.publish(t, "quiet", "", fmt.Sprintf("event %d", i))
		ev, err := s.recv(eventTimeout)
		took := time.Since(began)
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if ev.ID != res.ID {
			t.Fatalf("event %d: got %+v, want id %s", i, ev, res.ID)
		}
		if took > within {
			t.Errorf("event %d came through nginx %s after its publish, want within %s", i, took, within)
		} else {
			t.Logf("event %d came through nginx %s after its publish", i, took.Round(time.Microsecond))
		}
	}
}

// testNginxIdle keeps a stream idle for more than twice nginx's proxy_read_timeout: the
// gateway's keep-alives keep it open, and an event published then arrives on it.
func testNginxIdle(t *testing.T) {
	const readTimeout = 3 * time.Second
	g := startGateway(t, "GATEWAY_KEEPALIVE=1s")
	n := startNginx(t, g.httpAddr, "3s")
	resp, cancel := openStreamURL(t, n.client, n.url("/events?topic=idle"), streamOpts{})
	opened := time.Now()
	body := readRaw(resp.Body)
	t.Cleanup(func() {
		cancel()
		resp.Body.Close()
		<-body.done
	})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /events through nginx: %s", resp.Status)
	}
	const ping = ": ping\n"
	// The body would end (and waitFor fail) if nginx cut the stream.
	b := body.waitFor(t, 2*readTimeout+eventTimeout, fmt.Sprintf("the stream to stay open %s", 2*readTimeout), func([]byte) bool {
		return time.Since(opened) > 2*readTimeout
	})
	res := g.publish(t, "idle", "", "after the idle time")
	frame := "id: " + res.ID + "\ndata: after the idle time\n\n"
	b = body.waitFor(t, eventTimeout, "the event", func(b []byte) bool { return bytes.Contains(b, []byte(frame)) })
	idle, _, _ := strings.Cut(string(b), frame)
	pings := strings.Count(idle, ping)
	if want := "retry: 3000\n" + strings.Repeat(ping, pings); idle != want || pings < 2 {
		t.Errorf("idle stream %q, want the retry hint and keep-alives", idle)
	}
	t.Logf("the stream stayed open %s with %d keep-alives, then carried the event", time.Since(opened).Round(time.Millisecond), pings)
	if log := n.errorLog(1000); strings.Contains(log, "timed out") {
		t.Errorf("nginx timed a connection out:\n%s", log)
	}
}

// testNginxResume resumes through nginx from a Last-Event-ID: exactly the events after it
// arrive, then live ones.
func testNginxResume(t *testing.T) {
	g := startGateway(t)
	n := startNginx(t, g.httpAddr, "")
	var want []sseformat.Event
	for i := range 10 {
		typ := ""
		if i%3 == 0 {
			typ = "third"
		}
		data := fmt.Sprintf("event %d\nline 2", i)
		want = append(want, sseformat.Event{ID: g.publish(t, "r", typ, data).ID, Type: typ, Data: data})
	}
	const from = 3
	s := subscribeURL(t, n.client, n.url("/events?topic=r"), streamOpts{lastEventID: want[from].ID})
	live := g.publish(t, "r", "", "live")
	want = append(want, sseformat.Event{ID: live.ID, Data: "live"})
	compareEvents(t, s.take(t, len(want)-from-1), want[from+1:])
	g.expectNothingElse(t, "r", s)
}

// testNginxRestart reads a topic through nginx with a client that resumes from its last id
// whenever its stream ends or cannot be opened. nginx is stopped, events are published
// while it is down, and it is started again on the same port: the client must end up with
// every event exactly once, in order.
func testNginxRestart(t *testing.T) {
	g := startGateway(t, "GATEWAY_KEEPALIVE=1s")
	n := startNginx(t, g.httpAddr, "")
	first := g.publish(t, "r", "", "first")
	c := newResumer([]string{n.base()}, 0, []string{"r"}, epochOf(t, first.ID), first.ID)
	c.detail = true
	rs := runResumers(t, []*resumer{c})
	publish := func(what string, k int) {
		for i := range k {
			g.publish(t, "r", "", fmt.Sprintf("%s %d", what, i))
		}
	}
	publish("before", 10)
	rs.waitEach(t, eventTimeout, 10, []int64{0}, "the events published before the restart")

	n.stop(t)
	publish("while nginx is down", 10)
	n.start(t)
	publish("after", 10)

	_, js := g.natsConn(t)
	stream := readStream(t, js)
	if !rs.catchUp(stream, eventTimeout) {
		t.Fatalf("the client did not catch up within %s: %s", eventTimeout, c.doing())
	}
	if c.err != nil {
		t.Fatal(c.err)
	}
	if d := seqDiff(c.seqs, expectedSeqs(stream, c.filters, first.Seq)); d != "" {
		t.Fatal(d)
	}
	if d := c.dataDiff(stream); d != "" {
		t.Fatal(d)
	}
	if c.sessions < 2 {
		t.Errorf("%d streams: the client was not cut by the restart", c.sessions)
	}
	t.Logf("%d events over %d streams, %d cut", len(c.seqs), c.sessions, c.cuts)
}
