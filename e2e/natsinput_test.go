package e2e

import (
	"bufio"
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/natsse/natsse/sseformat"
)

// What NATS publishers send that an HTTP publish would refuse: the gateway delivers it,
// repaired, and never as one of its own notices.

// TestSanitized publishes over NATS data that is not UTF-8 and event types with CR and
// NUL. Subscribers get each event with the offending bytes replaced by U+FFFD, /stats
// counts each, and the stream goes on.
func TestSanitized(t *testing.T) {
	t.Parallel()
	g := startGateway(t)
	nc, _ := g.natsConn(t)
	s := g.subscribe(t, "topic=dirty")
	if err := nc.PublishMsg(natsMsg("dirty", "", "ok\xffok", "")); err != nil {
		t.Fatal(err)
	}
	g.waitStored(t, 1)
	// nats.go turns a CR in a header value into a space: these go out as raw protocol.
	g.publishRawNATS(t, "dirty", "Sse-Event: bad\rtype\r\n", "cr")
	g.waitStored(t, 2)
	g.publishRawNATS(t, "dirty", "Sse-Event: bad\x00type\r\n", "nul")
	g.waitStored(t, 3)
	clean := g.publish(t, "dirty", "", "clean")
	for _, want := range []sseformat.Event{
		{Data: "ok\uFFFDok"},
		{Type: "bad\uFFFDtype", Data: "cr"},
		{Type: "bad\uFFFDtype", Data: "nul"},
		{ID: clean.ID, Data: "clean"},
	} {
		ev := s.next(t)
		if ev.Type != want.Type || ev.Data != want.Data || (want.ID != "" && ev.ID != want.ID) {
			t.Errorf("got %+v, want %+v", ev, want)
		}
	}
	if st := g.stats(t); st.Sanitized != 3 {
		t.Errorf("stats: sanitized %d, want 3", st.Sanitized)
	}
}

// TestReservedTypesOverNATS publishes over NATS events typed as the gateway's notices:
// each goes out as a plain message, so that a client can trust a gap or token_expired
// event to come from the gateway; the event after them arrives as usual.
func TestReservedTypesOverNATS(t *testing.T) {
	t.Parallel()
	g := startGateway(t)
	nc, _ := g.natsConn(t)
	s := g.subscribe(t, "topic=spoof")
	for i, typ := range []string{"gap", "token_expired"} {
		if err := nc.PublishMsg(natsMsg("spoof", typ, "spoofed "+typ, "")); err != nil {
			t.Fatal(err)
		}
		g.waitStored(t, uint64(i+1))
	}
	marker := g.publish(t, "spoof", "", "marker")
	for _, want := range []string{"spoofed gap", "spoofed token_expired", "marker"} {
		if ev := s.next(t); ev.Type != "" || ev.Data != want {
			t.Fatalf("got %+v, want a plain message %q", ev, want)
		}
	}
	if marker.Seq != 3 {
		t.Errorf("marker %+v, want seq 3", marker)
	}
}

// waitStored waits until the gateway has dispatched the event seq, so that what is
// published next, on any connection, comes after it.
func (g *gatewayProc) waitStored(tb testing.TB, seq uint64) {
	tb.Helper()
	pollUntil(tb, eventTimeout, fmt.Sprintf("event %d dispatched", seq), func() bool {
		return g.stats(tb).LastSeq >= seq
	})
}

// publishRawNATS publishes data on topic's subject with the header lines hdr (each ending
// in CRLF) exactly as given, over a bare NATS protocol connection, and returns once the
// server has processed it.
func (g *gatewayProc) publishRawNATS(tb testing.TB, topic, hdr, data string) {
	tb.Helper()
	u, err := url.Parse(g.natsURL)
	if err != nil {
		tb.Fatal(err)
	}
	conn, err := net.DialTimeout("tcp", u.Host, eventTimeout)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(eventTimeout))
	r := bufio.NewReader(conn)
	if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, "INFO ") {
		tb.Fatalf("NATS greeting %q: %v", line, err)
	}
	block := "NATS/1.0\r\n" + hdr + "\r\n"
	fmt.Fprintf(conn, "CONNECT {\"verbose\":false,\"pedantic\":false,\"headers\":true,\"protocol\":1}\r\n"+
		"HPUB sse.%s %d %d\r\n%s%s\r\nPING\r\n", topic, len(block), len(block)+len(data), block, data)
	for {
		line, err := r.ReadString('\n')
		switch {
		case err != nil:
			tb.Fatalf("raw NATS publish: %v", err)
		case strings.HasPrefix(line, "-ERR"):
			tb.Fatalf("raw NATS publish: %s", strings.TrimSpace(line))
		case line == "PONG\r\n":
			return
		}
	}
}
