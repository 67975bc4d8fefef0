package gateway

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/golang-jwt/jwt/v5"
	"github.com/natsse/natsse/auth"
	"github.com/natsse/natsse/natsbus"
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
	// net/http's chunked reader reports io.ErrUnexpectedEOF on a body cut short.
	if _, err := s.rest(); !errors.Is(err, io.EOF) {
		t.Fatalf("the body ended with %v, want EOF after the last chunk", err)
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
	return openRawStreamOn(t, e, c, "topic="+topic, nil)
}

// dialSmallBuffer connects to e with a receive buffer of 4 KiB: a client that reads slowly
// soon holds the gateway's writes up.
func dialSmallBuffer(t testing.TB, e *testEnv) net.Conn {
	t.Helper()
	d := &net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	c, err := d.Dial("tcp", strings.TrimPrefix(e.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// openRawStreamOn opens a stream with query and header over c, and reads its headers.
func openRawStreamOn(t testing.TB, e *testEnv, c net.Conn, query string, header http.Header) *rawStream {
	t.Helper()
	t.Cleanup(func() { c.Close() })
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/events?"+query, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	if err := req.Write(c); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(waitFor))
	resp, err := http.ReadResponse(bufio.NewReaderSize(c, 512), req)
	if err != nil {
		t.Fatalf("stream %s: %v", query, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("stream %s: status %d", query, resp.StatusCode)
	}
	return &rawStream{conn: c, resp: resp, dec: sseformat.NewDecoder(bufio.NewReader(resp.Body))}
}

// rest reads the stream to its end, and returns the events read and how the body ended.
func (s *rawStream) rest() ([]sseformat.Event, error) {
	s.conn.SetReadDeadline(time.Now().Add(waitFor))
	var evs []sseformat.Event
	for {
		ev, err := s.dec.Next()
		if err != nil {
			return evs, err
		}
		evs = append(evs, ev)
	}
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

// TestParkedStreamTokenExpires: a parked stream whose token expires says so once, last,
// and ends its body.
func TestParkedStreamTokenExpires(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	v, err := auth.New(auth.Options{Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	e := newTestEnv(t, func(o *Options) { o.Auth, o.KeepAlive = v, time.Hour }, nil)
	token, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"exp": time.Now().Add(3*time.Second - auth.Leeway).Unix(), "natsse": map[string]any{"subscribe": []string{"x"}},
	}).SignedString(secret)
	c, err := net.Dial("tcp", strings.TrimPrefix(e.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	s := openRawStreamOn(t, e, c, "topic=x", http.Header{"Authorization": {"Bearer " + token}})
	if _, err := e.bus.Publish(t.Context(), natsbus.Publication{Topic: "x", Data: []byte("a")}); err != nil {
		t.Fatal(err)
	}
	evs, err := s.rest()
	if !errors.Is(err, io.EOF) {
		t.Fatalf("the body ended with %v after %d events", err, len(evs))
	}
	if len(evs) != 2 || evs[0].Data != "a" || evs[1].Type != TokenExpiredEventType {
		t.Fatalf("got %+v, want the event, then %s", evs, TokenExpiredEventType)
	}
}

// TestParkedStreamCutCatchesUp: a parked stream cut for being slow catches up in its runner
// and parks again, with every event exactly once and in order, then live ones.
func TestParkedStreamCutCatchesUp(t *testing.T) {
	e := newTestEnv(t, func(o *Options) { o.BufferSize, o.KeepAlive = 4, time.Hour }, nil)
	s := openRawStreamOn(t, e, dialSmallBuffer(t, e), "topic=y", nil)
	eventually(t, func() bool { return e.gw.Stats().Connections == 1 }, func() string { return "not joined" })
	const n = 1200
	data := strings.Repeat("z", 2000)
	for i := range n {
		if _, err := e.bus.Publish(t.Context(), natsbus.Publication{Topic: "y", Data: []byte(fmt.Sprintf("%d %s", i, data))}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		if ev := s.next(t); !strings.HasPrefix(ev.Data, fmt.Sprintf("%d ", i)) {
			t.Fatalf("event %d: got %.10q", i, ev.Data)
		}
	}
	if e.gw.Stats().SlowCut == 0 {
		t.Fatal("the stream was never cut: the test proves nothing")
	}
	e.publish(t, "y", "", "live")
	if ev := s.next(t); ev.Data != "live" {
		t.Fatalf("got %.10q, want the live event", ev.Data)
	}
}

// TestParkedStreamEndsCleanlyAfterClientBytes: a client that sent bytes after its request
// (pipelined, or a GET's body) still gets its whole body when the stream ends: unread bytes
// must not turn the close into a reset that drops what is still to be sent.
func TestParkedStreamEndsCleanlyAfterClientBytes(t *testing.T) {
	for _, extra := range []bool{false, true} {
		t.Run(fmt.Sprint("extra=", extra), func(t *testing.T) {
			e := newTestEnv(t, func(o *Options) { o.KeepAlive, o.WriteTimeout = time.Hour, time.Minute }, nil)
			s := openRawStreamOn(t, e, dialSmallBuffer(t, e), "topic=p", nil)
			eventually(t, func() bool { return e.gw.Stats().Connections == 1 }, func() string { return "not joined" })
			if extra {
				if _, err := s.conn.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
					t.Fatal(err)
				}
			}
			const n = 200
			data := []byte(strings.Repeat("q", 4000))
			var last uint64
			for range n {
				ack, err := e.bus.Publish(t.Context(), natsbus.Publication{Topic: "p", Data: data})
				if err != nil {
					t.Fatal(err)
				}
				last = ack.Seq
			}
			// Queued for the stream before it ends: what the feed has not dispatched by then
			// the client gets when it resumes, not before the end.
			e.waitDispatched(t, last)
			done := make(chan struct{})
			go func() {
				defer close(done)
				ctx, cancel := context.WithTimeout(context.Background(), waitFor)
				defer cancel()
				e.gw.Shutdown(ctx)
			}()
			evs, err := s.rest()
			if !errors.Is(err, io.EOF) || len(evs) != n {
				t.Fatalf("after %d of %d events: %v", len(evs), n, err)
			}
			<-done
		})
	}
}

// TestAbortBeforeStart: Shutdown's abort may land after the stream took its connection over
// and before its writer writes to it; the writes must still fail at once.
func TestAbortBeforeStart(t *testing.T) {
	e := newTestEnv(t, nil, nil)
	c, _ := gin.CreateTestContext(httptest.NewRecorder())
	w := newStreamWriter(c.Writer, time.Minute, e.gw.metrics)
	server, client := net.Pipe() // a client that reads nothing
	defer client.Close()
	defer server.Close()
	w.abort()
	started := make(chan error, 1)
	go func() { started <- w.start(time.Second, &connSink{conn: server}) }()
	select {
	case err := <-started:
		if err == nil {
			t.Fatal("start succeeded after abort")
		}
	case <-time.After(waitFor):
		t.Fatal("a write after abort blocks: the taken-over connection has no deadline")
	}
}
