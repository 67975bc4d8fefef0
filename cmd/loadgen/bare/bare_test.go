package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/natsse/natsse/sseformat"
)

// testServer is a broker served by httptest until the test ends; it checks at the end
// that every goroutine it started has returned.
type testServer struct {
	s   *server
	url string
}

func newTestServer(t *testing.T, queue, history int) *testServer {
	t.Helper()
	baseline := runtime.NumGoroutine()
	s := &server{b: newBroker(42, queue, history), writeTimeout: 10 * time.Second, keepAlive: 15 * time.Second}
	srv := httptest.NewServer(s.handler())
	t.Cleanup(func() {
		s.b.close()
		srv.Close()
		http.DefaultClient.CloseIdleConnections()
		if !poll(30*time.Second, func() bool { return runtime.NumGoroutine() <= baseline }) {
			buf := make([]byte, 1<<20)
			t.Errorf("%d goroutines, baseline %d:\n%s", runtime.NumGoroutine(), baseline, buf[:runtime.Stack(buf, true)])
		}
	})
	return &testServer{s: s, url: srv.URL}
}

// poll reports whether cond held within timeout.
func poll(timeout time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(timeout); !cond(); {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond) // polling interval, not synchronisation
	}
	return true
}

func (ts *testServer) do(t *testing.T, method, path, lastID, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, ts.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// publish publishes data on topic and returns the id the server answered.
func (ts *testServer) publish(t *testing.T, topic, data string) string {
	t.Helper()
	resp, body := ts.do(t, http.MethodPost, "/publish/"+topic, "", data)
	var ack struct {
		ID    string `json:"id"`
		Topic string `json:"topic"`
		Seq   uint64 `json:"seq"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(body), &ack) != nil || ack.Topic != topic || ack.ID != fmt.Sprintf("16-%d", ack.Seq) {
		t.Fatalf("publish on %s: %s %s", topic, resp.Status, body)
	}
	return ack.ID
}

// stream is an open GET /events whose events the test reads.
type stream struct {
	dec  *sseformat.Decoder
	body io.Closer
}

// open opens a stream of topic after lastID ("": from the next event) and waits until the
// server counts it open. Reads fail after 30s rather than hang.
func (ts *testServer) open(t *testing.T, topic, lastID string) *stream {
	t.Helper()
	want := ts.s.b.open.Load() + 1
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ts.url+"/events?topic="+topic, nil)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("GET /events: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	if !poll(30*time.Second, func() bool { return ts.s.b.open.Load() >= want }) {
		t.Fatal("the stream is not counted open")
	}
	return &stream{dec: sseformat.NewDecoder(resp.Body), body: resp.Body}
}

// next returns the stream's next event as "type id data" (type omitted when default).
func (s *stream) next(t *testing.T) string {
	t.Helper()
	ev, err := s.dec.Next()
	if err != nil {
		t.Fatalf("reading the stream: %v", err)
	}
	if ev.Type != "" {
		return ev.Type + " " + ev.ID + " " + ev.Data
	}
	return ev.ID + " " + ev.Data
}

func (s *stream) expect(t *testing.T, want ...string) {
	t.Helper()
	for _, w := range want {
		if got := s.next(t); got != w {
			t.Fatalf("got event %q, want %q", got, w)
		}
	}
}

func TestResumeThenLive(t *testing.T) {
	ts := newTestServer(t, 16, 100)
	a := ts.publish(t, "t.a", "one")
	ts.publish(t, "t.a", "two")
	ts.publish(t, "t.b", "other topic")
	ts.publish(t, "t.a", "three")
	s := ts.open(t, "t.a", a)
	s.expect(t, "16-2 two", "16-3 three")
	ts.publish(t, "t.a", "four")
	s.expect(t, "16-4 four")

	// Resuming at the newest event: only what comes next.
	s2 := ts.open(t, "t.a", "16-4")
	ts.publish(t, "t.a", "five\nlines")
	s2.expect(t, "16-5 five\nlines")
	s.expect(t, "16-5 five\nlines")
}

func TestNewStreamStartsWithNextEvent(t *testing.T) {
	ts := newTestServer(t, 16, 100)
	ts.publish(t, "t", "before")
	s := ts.open(t, "t", "")
	ts.publish(t, "t", "after")
	s.expect(t, "16-2 after")
}

func TestResumeBeyondHistoryGetsGap(t *testing.T) {
	// With 2 kept, 5 published keep events 3 to 5 (the history is trimmed at twice its size).
	ts := newTestServer(t, 16, 2)
	for i := 1; i <= 5; i++ {
		ts.publish(t, "t", fmt.Sprint(i))
	}
	s := ts.open(t, "t", "16-1")
	s.expect(t, `gap  {"reason":"history"}`, "16-3 3", "16-4 4", "16-5 5")
	s = ts.open(t, "t", "16-2")
	s.expect(t, "16-3 3", "16-4 4", "16-5 5")
	// An id of another process: its position means nothing here.
	s = ts.open(t, "t", "15-4")
	s.expect(t, `gap  {"reason":"history"}`, "16-3 3", "16-4 4", "16-5 5")
}

func TestFullQueueCutsStream(t *testing.T) {
	b := newBroker(42, 2, 100)
	sd, err := b.subscribe("t", "")
	if err != nil {
		t.Fatal(err)
	}
	other, _ := b.subscribe("t", "")
	for i := range 3 {
		b.publish("t", "", []byte(fmt.Sprint(i)))
	}
	frames, cut := sd.sub.take(nil)
	if len(frames) != 2 || !cut || b.cut.Load() != 2 {
		t.Fatalf("after 3 events on a queue of 2: %d queued, cut %t, %d cut in all", len(frames), cut, b.cut.Load())
	}
	if want := "id: 16-1\ndata: 0\n\n"; string(frames[0]) != want {
		t.Errorf("first frame %q, want %q", frames[0], want)
	}
	b.publish("t", "", []byte("more"))
	if frames, _ := sd.sub.take(frames); len(frames) != 0 || b.cut.Load() != 2 {
		t.Errorf("a cut stream was sent %d more events; %d cut", len(frames), b.cut.Load())
	}
	// Taking in time keeps a stream live.
	b2 := newBroker(42, 2, 100)
	live, _ := b2.subscribe("t", "")
	var spare [][]byte
	for i := range 10 {
		b2.publish("t", "", []byte(fmt.Sprint(i)))
		frames, cut := live.sub.take(spare)
		if len(frames) != 1 || cut {
			t.Fatalf("event %d: %d queued, cut %t", i, len(frames), cut)
		}
		spare = frames
	}
	b.unsubscribe("t", sd.sub)
	b.unsubscribe("t", other.sub)
	b2.unsubscribe("t", live.sub)
	if b.open.Load() != 0 || b2.open.Load() != 0 {
		t.Errorf("open after unsubscribing: %d, %d", b.open.Load(), b2.open.Load())
	}
}

func TestCloseEndsStreams(t *testing.T) {
	ts := newTestServer(t, 16, 100)
	s := ts.open(t, "t", "")
	ts.s.b.close()
	if ev, err := s.dec.Next(); err != io.EOF {
		t.Fatalf("after close: %v, %v; want the stream to end", ev, err)
	}
	resp, body := ts.do(t, http.MethodGet, "/events?topic=t", "", "")
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, `"code":"unavailable"`) {
		t.Errorf("GET /events after close: %s %s", resp.Status, body)
	}
	if !poll(30*time.Second, func() bool { return ts.s.b.open.Load() == 0 }) {
		t.Errorf("%d streams still counted open", ts.s.b.open.Load())
	}
}

func TestBadRequests(t *testing.T) {
	ts := newTestServer(t, 16, 100)
	ts.publish(t, "t", "x")
	tests := []struct {
		name, method, path, lastID, body string
		status                           int
		code                             string
	}{
		{"no topic", "GET", "/events", "", "", 400, "invalid_topic"},
		{"empty token", "GET", "/events?topic=a..b", "", "", 400, "invalid_topic"},
		{"wildcard", "GET", "/events?topic=a.>", "", "", 400, "invalid_topic"},
		{"space", "GET", "/events?topic=a%20b", "", "", 400, "invalid_topic"},
		{"long topic", "GET", "/events?topic=" + strings.Repeat("a", 257), "", "", 400, "invalid_topic"},
		{"malformed id", "GET", "/events?topic=t", "nope", "", 400, "invalid_last_event_id"},
		{"id with a plus", "GET", "/events?topic=t", "16-+1", "", 400, "invalid_last_event_id"},
		{"id never sent", "GET", "/events?topic=t", "16-2", "", 400, "invalid_last_event_id"},
		{"events by POST", "POST", "/events?topic=t", "", "", 405, "method_not_allowed"},
		{"publish by GET", "GET", "/publish/t", "", "", 405, "method_not_allowed"},
		{"publish without topic", "POST", "/publish/", "", "x", 400, "invalid_topic"},
		{"publish wildcard", "POST", "/publish/a.*", "", "x", 400, "invalid_topic"},
		{"reserved type", "POST", "/publish/t?event=gap", "", "x", 400, "invalid_event_type"},
		{"type with a line break", "POST", "/publish/t?event=a%0Ab", "", "x", 400, "invalid_event_type"},
		{"invalid UTF-8", "POST", "/publish/t", "", "\xff", 400, "invalid_data"},
		{"too large", "POST", "/publish/t", "", strings.Repeat("x", maxEventBytes+1), 413, "too_large"},
		{"stats by POST", "POST", "/stats", "", "", 405, "method_not_allowed"},
		{"unknown path", "GET", "/nope", "", "", 404, "not_found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := ts.do(t, tt.method, tt.path, tt.lastID, tt.body)
			var e struct{ Error, Code string }
			if err := json.Unmarshal([]byte(body), &e); err != nil || resp.StatusCode != tt.status || e.Code != tt.code || e.Error == "" {
				t.Errorf("%s %s: %s %s; want %d %s", tt.method, tt.path, resp.Status, body, tt.status, tt.code)
			}
		})
	}
	// None of them published or left a stream open.
	resp, body := ts.do(t, http.MethodGet, "/stats", "", "")
	if resp.StatusCode != 200 || body != `{"connections":0,"slow_cut":0}` {
		t.Errorf("GET /stats: %s %s", resp.Status, body)
	}
	s := ts.open(t, "t", "16-1")
	ts.publish(t, "t", "y")
	s.expect(t, "16-2 y")
}

func TestFullQueueEndsStream(t *testing.T) {
	// A stream whose client does not read: once the socket's buffers are full its writer
	// waits, its queue of 1 fills, and the next publish cuts it.
	ts := newTestServer(t, 1, 10)
	s := ts.open(t, "t", "")
	data := strings.Repeat("x", 60<<10)
	published := 0
	for ts.s.b.cut.Load() == 0 {
		if published == 5000 {
			t.Fatalf("not cut after %d events of 60 KiB", published)
		}
		ts.publish(t, "t", data)
		published++
	}
	// It gets every event up to where it was cut, in order, then its end.
	var got int
	for {
		ev, err := s.dec.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("after %d events: %v", got, err)
		}
		got++
		if want := fmt.Sprintf("16-%d", got); ev.ID != want || ev.Data != data {
			t.Fatalf("event %d has id %s, want %s", got, ev.ID, want)
		}
	}
	if got == 0 || got >= published {
		t.Errorf("got %d of %d events before the end", got, published)
	}
}
