package gateway

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/natsse/natsse/sseformat"
)

// TestParkedStreams holds idle HTTP/1.1 streams without a goroutine each, wakes them for
// events, and ends them as soon as their clients hang up (not at a keep-alive that finds
// them gone): with Linux's watcher of hang-ups, and with a reader per stream (elsewhere, or
// when the watcher is unavailable).
func TestParkedStreams(t *testing.T) {
	const streams = 40
	for _, watcher := range []string{"watcher", "reader"} {
		t.Run(watcher, func(t *testing.T) {
			baseline := runtime.NumGoroutine()
			e := newTestEnv(t, func(o *Options) { o.KeepAlive, o.MaxStreamsPerClient = time.Hour, 0 }, nil)
			perStream := 1 // the reader
			if watcher == "reader" {
				e.gw.hangups.close()
				e.gw.hangups = nil
			} else if e.gw.hangups != nil {
				perStream = 0
			}
			withGateway := runtime.NumGoroutine()
			var ss []*rawStream
			for i := range streams {
				ss = append(ss, openRawStream(t, e, fmt.Sprintf("parked.%d", i)))
			}
			eventually(t, func() bool { return e.gw.Stats().Connections == streams },
				func() string { return fmt.Sprintf("%d streams joined", e.gw.Stats().Connections) })
			// The goroutines that ran the streams up to their parking go.
			eventually(t, func() bool { return runtime.NumGoroutine()-withGateway <= perStream*streams+2 }, func() string {
				return fmt.Sprintf("%d goroutines for %d idle streams", runtime.NumGoroutine()-withGateway, streams)
			})

			// Woken by events, in order.
			for i := range 3 {
				e.publish(t, "parked.0", "", fmt.Sprintf("e%d", i))
			}
			for i := range 3 {
				if ev := ss[0].next(t); ev.Data != fmt.Sprintf("e%d", i) {
					t.Fatalf("event %d: got %q", i, ev.Data)
				}
			}

			// A client that hangs up ends its stream.
			for _, s := range ss[:streams/2] {
				s.conn.Close()
			}
			eventually(t, func() bool {
				return e.gw.Stats().Connections == streams/2 && e.gw.metrics.open.Load() == streams/2
			}, func() string {
				return fmt.Sprintf("%d streams joined, %d open", e.gw.Stats().Connections, e.gw.metrics.open.Load())
			})
			for _, s := range ss[streams/2:] {
				s.conn.Close()
			}
			eventually(t, func() bool { return e.gw.metrics.open.Load() == 0 },
				func() string { return fmt.Sprintf("%d streams open", e.gw.metrics.open.Load()) })
			e.close()
			checkGoroutines(t, baseline)
		})
	}
}

// TestParkedStreamKeepAlive checks that a parked stream wakes for its keep-alive, again and
// again.
func TestParkedStreamKeepAlive(t *testing.T) {
	e := newTestEnv(t, func(o *Options) { o.KeepAlive = time.Second }, nil)
	openRawStream(t, e, "parked.ping").pings(t, 3)
}

// TestParkedStreamEndsItsBody checks the end of a parked stream's body on the wire: a
// Gateway that closes ends each stream with the last chunk, so that the client sees a
// complete response.
func TestParkedStreamEndsItsBody(t *testing.T) {
	e := newTestEnv(t, nil, nil)
	s := openRawStream(t, e, "parked.end")
	if te := s.resp.TransferEncoding; len(te) != 1 || te[0] != "chunked" {
		t.Fatalf("Transfer-Encoding %q, want chunked", te)
	}
	if ct := s.resp.Header.Get("Content-Type"); ct != "text/event-stream; charset=utf-8" {
		t.Fatalf("Content-Type %q", ct)
	}
	eventually(t, func() bool { return e.gw.Stats().Connections == 1 }, func() string { return "not joined" })
	e.gw.Close()
	for {
		_, err := s.dec.Next()
		if err == nil {
			continue
		}
		// net/http's chunked reader reports io.ErrUnexpectedEOF on a body cut short.
		if !errors.Is(err, io.EOF) {
			t.Fatalf("the body ended with %v, want EOF after the last chunk", err)
		}
		return
	}
}

// rawStream is a stream read over a connection of its own, with net/http's response parser.
type rawStream struct {
	conn net.Conn
	resp *http.Response
	dec  *sseformat.Decoder
}

// openRawStream opens a stream of topic on a connection of its own and reads its headers.
func openRawStream(t testing.TB, e *testEnv, topic string) *rawStream {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(e.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/events?topic="+topic, nil)
	if err := req.Write(c); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(waitFor))
	resp, err := http.ReadResponse(bufio.NewReaderSize(c, 512), req)
	if err != nil {
		t.Fatalf("stream %s: %v", topic, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("stream %s: status %d", topic, resp.StatusCode)
	}
	return &rawStream{conn: c, resp: resp, dec: sseformat.NewDecoder(bufio.NewReader(resp.Body))}
}

// next returns the stream's next event.
func (s *rawStream) next(t testing.TB) sseformat.Event {
	t.Helper()
	s.conn.SetReadDeadline(time.Now().Add(waitFor))
	ev, err := s.dec.Next()
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// pings reads the stream until n keep-alive comments have come.
func (s *rawStream) pings(t testing.TB, n int) {
	t.Helper()
	s.conn.SetReadDeadline(time.Now().Add(waitFor))
	r := bufio.NewReader(s.resp.Body)
	for n > 0 {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("waiting for %d more keep-alives: %v", n, err)
		}
		if line == ": ping\n" {
			n--
		}
	}
}
