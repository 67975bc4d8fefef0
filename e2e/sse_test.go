package e2e

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/natsse/natsse/sseformat"
)

// sseStream is a client's open SSE stream. Its body is read as fast as the gateway sends
// it, into memory, so that the client itself is never slow; the test takes the decoded
// events with next.
type sseStream struct {
	resp   *http.Response
	cancel context.CancelFunc
	events chan sseformat.Event // closed when the stream ends; then err says why
	err    error
	quit   chan struct{}
	done   chan struct{}
	once   sync.Once
	last   string // id of the last event returned by next
}

// streamOpts are the optional parts of a stream request.
type streamOpts struct {
	lastEventID string // Last-Event-ID header
	header      http.Header
}

// subscribe opens GET /events?<query> and checks that it is an event stream. The stream is
// closed when the test ends.
func (g *gatewayProc) subscribe(tb testing.TB, query string) *sseStream {
	tb.Helper()
	return g.subscribeWith(tb, query, streamOpts{})
}

// subscribeFrom opens GET /events?<query> with a Last-Event-ID header.
func (g *gatewayProc) subscribeFrom(tb testing.TB, query, lastEventID string) *sseStream {
	tb.Helper()
	return g.subscribeWith(tb, query, streamOpts{lastEventID: lastEventID})
}

func (g *gatewayProc) subscribeWith(tb testing.TB, query string, o streamOpts) *sseStream {
	tb.Helper()
	return subscribeURL(tb, g.client, g.url("/events?"+query), o)
}

// subscribeURL opens the stream at streamURL, a gateway's or a proxy's in front of it, with
// client, and checks that it is an event stream. The stream is closed when the test ends.
func subscribeURL(tb testing.TB, client *http.Client, streamURL string, o streamOpts) *sseStream {
	tb.Helper()
	resp, cancel := openStreamURL(tb, client, streamURL, o)
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		tb.Fatalf("GET %s: %s: %s", streamURL, resp.Status, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream; charset=utf-8" {
		resp.Body.Close()
		cancel()
		tb.Fatalf("GET %s: Content-Type %q", streamURL, ct)
	}
	s := &sseStream{
		resp:   resp,
		cancel: cancel,
		events: make(chan sseformat.Event, 64),
		quit:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	pipe := newMemPipe()
	go func() {
		_, err := io.Copy(pipe, resp.Body)
		if err == nil {
			err = io.EOF
		}
		pipe.closeWithError(err)
	}()
	go s.decode(pipe)
	tb.Cleanup(s.close)
	return s
}

// openStream sends GET /events?<query> and returns the response, body unread.
func (g *gatewayProc) openStream(tb testing.TB, query string, o streamOpts) (*http.Response, context.CancelFunc) {
	tb.Helper()
	return openStreamURL(tb, g.client, g.url("/events?"+query), o)
}

// openStreamURL sends GET streamURL with client and returns the response, body unread.
func openStreamURL(tb testing.TB, client *http.Client, streamURL string, o streamOpts) (*http.Response, context.CancelFunc) {
	tb.Helper()
	ctx, cancel := context.WithCancel(tb.Context())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, streamURL, nil)
	if err != nil {
		cancel()
		tb.Fatal(err)
	}
	for k, v := range o.header {
		req.Header[k] = v
	}
	if o.lastEventID != "" {
		req.Header.Set("Last-Event-ID", o.lastEventID)
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := client.Do(req)
	if err != nil {
		cancel()
		tb.Fatalf("GET %s: %v", streamURL, err)
	}
	return resp, cancel
}

func (s *sseStream) decode(r io.Reader) {
	defer close(s.done)
	dec := sseformat.NewDecoder(r)
	for first := true; ; first = false {
		ev, err := dec.Next()
		if err != nil {
			s.err = err
			close(s.events)
			return
		}
		if first {
			// The stream's retry hint is a line of the first event's block (a block of
			// its own would be an empty message to some clients): it is not the event's.
			// TestStreamWire checks it; any later event must carry none.
			ev.Retry = 0
		}
		select {
		case s.events <- ev:
		case <-s.quit:
			s.err = errors.New("stream closed by the test")
			close(s.events)
			return
		}
	}
}

// recv returns the next event, the error that ended the stream, or errTimeout.
func (s *sseStream) recv(timeout time.Duration) (sseformat.Event, error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case ev, ok := <-s.events:
		if !ok {
			return ev, s.err
		}
		s.last = ev.ID
		return ev, nil
	case <-timer.C:
		return sseformat.Event{}, errTimeout
	}
}

// next returns the next event, failing the test if none comes within eventTimeout.
func (s *sseStream) next(tb testing.TB) sseformat.Event {
	tb.Helper()
	ev, err := s.recv(eventTimeout)
	if err != nil {
		tb.Fatalf("waiting for an event (after id %q): %v", s.last, err)
	}
	return ev
}

// take returns the next n events.
func (s *sseStream) take(tb testing.TB, n int) []sseformat.Event {
	tb.Helper()
	evs := make([]sseformat.Event, 0, n)
	for range n {
		evs = append(evs, s.next(tb))
	}
	return evs
}

// until returns the events up to and including the first one for which stop is true.
func (s *sseStream) until(tb testing.TB, max int, stop func(sseformat.Event) bool) []sseformat.Event {
	tb.Helper()
	var evs []sseformat.Event
	for {
		ev := s.next(tb)
		evs = append(evs, ev)
		if stop(ev) {
			return evs
		}
		if len(evs) > max {
			tb.Fatalf("more than %d events without the one expected", max)
		}
	}
}

// expectEnd waits for the stream to end and returns why (io.EOF for a clean end). Events
// still arriving are returned too.
func (s *sseStream) expectEnd(tb testing.TB, timeout time.Duration) ([]sseformat.Event, error) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	var evs []sseformat.Event
	for {
		ev, err := s.recv(time.Until(deadline))
		if errors.Is(err, errTimeout) {
			tb.Fatalf("stream still open after %s", timeout)
		}
		if err != nil {
			return evs, err
		}
		evs = append(evs, ev)
	}
}

// expectNothingElse proves that nothing else is on its way to the streams: it publishes a
// marker event on topic, which every stream's filters match, and checks that the marker is
// each stream's next event. Anything the streams should not have got, or got twice, would
// arrive before it. It returns the marker as the streams receive it, even when they got
// something else first.
func (g *gatewayProc) expectNothingElse(tb testing.TB, topic string, streams ...*sseStream) sseformat.Event {
	tb.Helper()
	const typ, data = "marker", "nothing came before this"
	marker := sseformat.Event{ID: g.publish(tb, topic, typ, data).ID, Type: typ, Data: data}
	for i, s := range streams {
		if ev := s.next(tb); ev != marker {
			tb.Errorf("stream %d of %d: got %+v before the marker %s", i+1, len(streams), ev, marker.ID)
		}
	}
	return marker
}

// close ends the request and waits for the reader to return. It is idempotent.
func (s *sseStream) close() {
	s.once.Do(func() {
		s.cancel()
		close(s.quit)
		s.resp.Body.Close()
		<-s.done
	})
}

// memPipe is an unbounded in-memory pipe: writes never block.
type memPipe struct {
	mu   sync.Mutex
	cond *sync.Cond
	buf  bytes.Buffer
	err  error
}

func newMemPipe() *memPipe {
	p := &memPipe{}
	p.cond = sync.NewCond(&p.mu)
	return p
}

func (p *memPipe) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.buf.Write(b)
	p.cond.Signal()
	return len(b), nil
}

func (p *memPipe) closeWithError(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.err = err
	p.cond.Signal()
}

func (p *memPipe) Read(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.buf.Len() == 0 && p.err == nil {
		p.cond.Wait()
	}
	if p.buf.Len() > 0 {
		return p.buf.Read(b)
	}
	return 0, p.err
}

// rawBody collects the bytes of a response body as they arrive.
type rawBody struct {
	mu      sync.Mutex
	buf     []byte
	err     error
	changed chan struct{}
	done    chan struct{}
}

func readRaw(body io.Reader) *rawBody {
	r := &rawBody{changed: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		b := make([]byte, 32<<10)
		for {
			n, err := body.Read(b)
			r.mu.Lock()
			r.buf = append(r.buf, b[:n]...)
			if err != nil {
				r.err = err
			}
			close(r.changed)
			r.changed = make(chan struct{})
			r.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return r
}

// waitFor waits until the bytes received satisfy cond and returns them.
func (r *rawBody) waitFor(tb testing.TB, timeout time.Duration, what string, cond func([]byte) bool) []byte {
	tb.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		r.mu.Lock()
		buf, err, changed := append([]byte(nil), r.buf...), r.err, r.changed
		r.mu.Unlock()
		if cond(buf) {
			return buf
		}
		if err != nil {
			tb.Fatalf("body ended (%v) before %s; got %q", err, what, buf)
		}
		select {
		case <-changed:
		case <-timer.C:
			tb.Fatalf("no %s within %s; got %q", what, timeout, buf)
		}
	}
}
