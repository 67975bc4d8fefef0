package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/natsse/natsse/sseformat"
)

// eventTimeout bounds the wait for one expected event.
const eventTimeout = 20 * time.Second

func (g *gatewayProc) url(pathAndQuery string) string { return g.base + pathAndQuery }

// publishResult is the answer to POST /publish/<topic>.
type publishResult struct {
	ID        string `json:"id"`
	Topic     string `json:"topic"`
	Seq       uint64 `json:"seq"`
	Duplicate bool   `json:"duplicate"`
}

// errorResult is the body of every error answer.
type errorResult struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

// tryPublish publishes data on topic over HTTP, with an event type and an Idempotency-Key
// when they are not empty. It is safe to call from any goroutine.
func (g *gatewayProc) tryPublish(ctx context.Context, topic, typ, data, key string) (publishResult, error) {
	u := g.url("/publish/" + topic)
	if typ != "" {
		u += "?event=" + url.QueryEscape(typ)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(data))
	if err != nil {
		return publishResult{}, err
	}
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := g.client.Do(req)
	if err != nil {
		return publishResult{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return publishResult{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return publishResult{}, fmt.Errorf("publish %s: %s: %s", topic, resp.Status, body)
	}
	var res publishResult
	if err := json.Unmarshal(body, &res); err != nil {
		return res, fmt.Errorf("publish %s: answer %q: %w", topic, body, err)
	}
	return res, nil
}

// publish publishes over HTTP and checks the answer's topic.
func (g *gatewayProc) publish(tb testing.TB, topic, typ, data string) publishResult {
	tb.Helper()
	return g.publishKey(tb, topic, typ, data, "")
}

func (g *gatewayProc) publishKey(tb testing.TB, topic, typ, data, key string) publishResult {
	tb.Helper()
	res, err := g.tryPublish(tb.Context(), topic, typ, data, key)
	if err != nil {
		tb.Fatal(err)
	}
	if res.Topic != topic || res.ID == "" || res.Seq == 0 {
		tb.Fatalf("publish %s: answer %+v", topic, res)
	}
	return res
}

// do sends a request and returns the response with its body read.
func (g *gatewayProc) do(tb testing.TB, method, pathAndQuery string, body io.Reader, header http.Header) (*http.Response, []byte) {
	tb.Helper()
	req, err := http.NewRequestWithContext(tb.Context(), method, g.url(pathAndQuery), body)
	if err != nil {
		tb.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := g.client.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, pathAndQuery, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("%s %s: reading body: %v", method, pathAndQuery, err)
	}
	return resp, b
}

// getJSON GETs path, expects 200 with a JSON body and decodes it into v.
func (g *gatewayProc) getJSON(tb testing.TB, path string, v any) {
	tb.Helper()
	resp, body := g.do(tb, http.MethodGet, path, nil, nil)
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("GET %s: %s: %s", path, resp.Status, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		tb.Fatalf("GET %s: Content-Type %q, want application/json", path, ct)
	}
	if err := json.Unmarshal(body, v); err != nil {
		tb.Fatalf("GET %s: %q: %v", path, body, err)
	}
}

// gatewayStats is GET /stats.
type gatewayStats struct {
	Connections int64  `json:"connections"`
	Dispatched  uint64 `json:"dispatched"`
	SlowCut     uint64 `json:"slow_cut"`
	Sanitized   uint64 `json:"sanitized"`
	LastSeq     uint64 `json:"last_seq"`
}

func (g *gatewayProc) stats(tb testing.TB) gatewayStats {
	tb.Helper()
	var s gatewayStats
	g.getJSON(tb, "/stats", &s)
	return s
}

// natsConn connects to the gateway's NATS listener; the connection is closed when the
// test ends.
func (g *gatewayProc) natsConn(tb testing.TB) (*nats.Conn, jetstream.JetStream) {
	tb.Helper()
	nc, err := nats.Connect(g.natsURL, nats.Name("e2e"), nats.MaxReconnects(0))
	if err != nil {
		tb.Fatalf("connect to %s: %v", g.natsURL, err)
	}
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatalf("jetstream: %v", err)
	}
	return nc, js
}

// natsMsg builds a NATS message on the subject of topic, with an Sse-Event header when typ
// is not empty and a Nats-Msg-Id when msgID is not empty.
func natsMsg(topic, typ, data, msgID string) *nats.Msg {
	m := nats.NewMsg("sse." + topic)
	m.Data = []byte(data)
	if typ != "" {
		m.Header.Set("Sse-Event", typ)
	}
	if msgID != "" {
		m.Header.Set(nats.MsgIdHdr, msgID)
	}
	return m
}

// epochOf returns the stream epoch part of an event id ("<epoch>-<seq>").
func epochOf(tb testing.TB, id string) string {
	tb.Helper()
	e, _, ok := strings.Cut(id, "-")
	if !ok || e == "" {
		tb.Fatalf("event id %q: want <epoch>-<seq>", id)
	}
	return e
}

func eventID(epoch string, seq uint64) string { return fmt.Sprintf("%s-%d", epoch, seq) }

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
	resp, cancel := g.openStream(tb, query, o)
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		tb.Fatalf("GET /events?%s: %s: %s", query, resp.Status, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream; charset=utf-8" {
		resp.Body.Close()
		cancel()
		tb.Fatalf("GET /events?%s: Content-Type %q", query, ct)
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
	ctx, cancel := context.WithCancel(tb.Context())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.url("/events?"+query), nil)
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
	resp, err := g.client.Do(req)
	if err != nil {
		cancel()
		tb.Fatalf("GET /events?%s: %v", query, err)
	}
	return resp, cancel
}

func (s *sseStream) decode(r io.Reader) {
	defer close(s.done)
	dec := sseformat.NewDecoder(r)
	for {
		ev, err := dec.Next()
		if err != nil {
			s.err = err
			close(s.events)
			return
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

// expectQuiet checks that no event arrives within d.
func (s *sseStream) expectQuiet(tb testing.TB, d time.Duration) {
	tb.Helper()
	ev, err := s.recv(d)
	switch {
	case err == nil:
		tb.Fatalf("unexpected event %+v", ev)
	case !errors.Is(err, errTimeout):
		tb.Fatalf("stream ended: %v", err)
	}
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

// matchTopic reports whether a NATS-style filter (with "*" and ">") matches topic.
func matchTopic(filter, topic string) bool {
	f, t := strings.Split(filter, "."), strings.Split(topic, ".")
	for i, tok := range f {
		if tok == ">" {
			return len(t) > i
		}
		if i >= len(t) || (tok != "*" && tok != t[i]) {
			return false
		}
	}
	return len(f) == len(t)
}

func matchAny(filters []string, topic string) bool {
	for _, f := range filters {
		if matchTopic(f, topic) {
			return true
		}
	}
	return false
}

// topicQuery builds "topic=a&topic=b".
func topicQuery(topics ...string) string {
	q := url.Values{"topic": topics}
	return q.Encode()
}

// wireData is data as an SSE client receives it: every line break becomes LF.
func wireData(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\r", "\n")
}

// storedMsg is one message of the gateway's stream, read directly over NATS.
type storedMsg struct {
	seq   uint64
	topic string
	typ   string
	data  string
}

// readStream reads every message of the stream capturing "sse.>" over JetStream, without
// going through the gateway: the reference the events delivered over SSE are compared with.
func readStream(tb testing.TB, js jetstream.JetStream) []storedMsg {
	tb.Helper()
	name, err := js.StreamNameBySubject(tb.Context(), "sse.>")
	if err != nil {
		tb.Fatalf("stream of sse.>: %v", err)
	}
	return readStreamNamed(tb, js, name)
}

// readStreamNamed reads every message of the stream name with a short-lived consumer,
// deleted afterwards.
func readStreamNamed(tb testing.TB, js jetstream.JetStream, name string) []storedMsg {
	tb.Helper()
	ctx := tb.Context()
	stream, err := js.Stream(ctx, name)
	if err != nil {
		tb.Fatalf("stream %s: %v", name, err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		tb.Fatalf("stream %s info: %v", name, err)
	}
	last := info.State.LastSeq
	if info.State.Msgs == 0 {
		return nil
	}
	cons, err := stream.CreateConsumer(ctx, jetstream.ConsumerConfig{
		AckPolicy:         jetstream.AckNonePolicy,
		MemoryStorage:     true,
		Replicas:          1,
		InactiveThreshold: time.Minute,
	})
	if err != nil {
		tb.Fatalf("consumer: %v", err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		stream.DeleteConsumer(dctx, cons.CachedInfo().Name)
	}()
	var out []storedMsg
	noResponders := 0
	for len(out) == 0 || out[len(out)-1].seq < last {
		// Ask for no more than is left: a fetch waits for its batch to fill.
		n := min(500, max(int(info.State.Msgs)-len(out), 1))
		batch, err := cons.Fetch(n, jetstream.FetchMaxWait(5*time.Second))
		if errors.Is(err, nats.ErrNoResponders) && noResponders < 50 {
			noResponders++
			<-time.After(100 * time.Millisecond) // until the consumer's interest has spread
			continue
		}
		if err != nil {
			tb.Fatalf("fetch: %v", err)
		}
		got := 0
		for m := range batch.Messages() {
			got++
			md, err := m.Metadata()
			if err != nil {
				tb.Fatalf("metadata: %v", err)
			}
			out = append(out, storedMsg{
				seq:   md.Sequence.Stream,
				topic: strings.TrimPrefix(m.Subject(), "sse."),
				typ:   m.Headers().Get("Sse-Event"),
				data:  string(m.Data()),
			})
		}
		if err := batch.Error(); errors.Is(err, nats.ErrNoResponders) && noResponders < 50 && got == 0 {
			noResponders++
			<-time.After(100 * time.Millisecond)
			continue
		} else if err != nil {
			tb.Fatalf("fetch: %v", err)
		}
		if got == 0 {
			tb.Fatalf("stream read stalled at %d of %d messages", len(out), info.State.Msgs)
		}
	}
	return out
}

// syncList is a list that several goroutines append to.
type syncList[T any] struct {
	mu    sync.Mutex
	items []T
}

func (l *syncList[T]) add(v T) {
	l.mu.Lock()
	l.items = append(l.items, v)
	l.mu.Unlock()
}

// all returns a copy of the items.
func (l *syncList[T]) all() []T {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.items)
}

func (l *syncList[T]) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.items)
}
