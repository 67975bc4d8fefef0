package gateway

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestBadInput(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, func(o *Options) { o.MaxEventBytes = 1024; o.MaxTopics = 3 }, nil)
	tests := []struct {
		name, method, path, body string
		header                   map[string]string
		status                   int
		code                     string
	}{
		{"publish empty token", "POST", "/publish/a..b", "x", nil, 400, "invalid_topic"},
		{"publish trailing dot", "POST", "/publish/a.", "x", nil, 400, "invalid_topic"},
		{"publish no topic", "POST", "/publish/", "x", nil, 400, "invalid_topic"},
		{"publish space", "POST", "/publish/a%20b", "x", nil, 400, "invalid_topic"},
		{"publish wildcard", "POST", "/publish/a.*", "x", nil, 400, "invalid_topic"},
		{"publish tail wildcard", "POST", "/publish/a.%3E", "x", nil, 400, "invalid_topic"},
		{"publish not UTF-8", "POST", "/publish/a", "bad \xff", nil, 400, "invalid_data"},
		{"publish too large", "POST", "/publish/a", strings.Repeat("x", 2000), nil, 413, "too_large"},
		{"publish too many lines", "POST", "/publish/a", strings.Repeat("\n", 200), nil, 413, "too_large"},
		{"event type with LF", "POST", "/publish/a?event=x%0Ay", "x", nil, 400, "invalid_event_type"},
		{"reserved event type", "POST", "/publish/a?event=gap", "x", nil, 400, "invalid_event_type"},
		{"event type with CR", "POST", "/publish/a?event=x%0Dy", "x", nil, 400, "invalid_event_type"},
		{"event type with a leading space", "POST", "/publish/a?event=%20x", "x", nil, 400, "invalid_event_type"},
		{"event type with a trailing tab", "POST", "/publish/a?event=x%09", "x", nil, 400, "invalid_event_type"},
		{"typo in publish parameter", "POST", "/publish/a?evnt=x", "x", nil, 400, "bad_request"},
		{"idempotency key too long", "POST", "/publish/a", "x", map[string]string{"Idempotency-Key": strings.Repeat("k", 257)}, 400, "bad_request"},
		{"publish with GET", "GET", "/publish/a", "", nil, 405, "method_not_allowed"},
		{"no topic", "GET", "/events", "", nil, 400, "bad_request"},
		{"empty topic", "GET", "/events?topic=", "", nil, 400, "invalid_topic"},
		{"bad filter", "GET", "/events?topic=a.%3E.b", "", nil, 400, "invalid_topic"},
		{"too many topics", "GET", "/events?topic=a&topic=b&topic=c&topic=d", "", nil, 400, "bad_request"},
		{"typo topics", "GET", "/events?topics=a", "", nil, 400, "bad_request"},
		{"typo case", "GET", "/events?Topic=a", "", nil, 400, "bad_request"},
		{"typo last-event-id", "GET", "/events?topic=a&last-event-id=x", "", nil, 400, "bad_request"},
		{"bad envelope", "GET", "/events?topic=a&envelope=maybe", "", nil, 400, "bad_request"},
		{"bad latest", "GET", "/events?topic=a&latest=yes", "", nil, 400, "bad_request"},
		{"empty-looking latest", "GET", "/events?topic=a&latest=%20", "", nil, 400, "bad_request"},
		{"typo latest", "GET", "/events?topic=a&lates=true", "", nil, 400, "bad_request"},
		{"garbage Last-Event-ID", "GET", "/events?topic=a", "", map[string]string{"Last-Event-ID": "garbage"}, 400, "invalid_last_event_id"},
		{"garbage last_event_id", "GET", "/events?topic=a&last_event_id=1-2-3", "", nil, 400, "invalid_last_event_id"},
		{"negative seq", "GET", "/events?topic=a&last_event_id=abc--1", "", nil, 400, "invalid_last_event_id"},
		{"events with POST", "POST", "/events?topic=a", "", nil, 405, "method_not_allowed"},
		{"unknown path", "GET", "/nope", "", nil, 404, "not_found"},
		{"huge header", "GET", "/events?topic=a", "", map[string]string{"X-Junk": strings.Repeat("j", 40<<10)}, 431, "headers_too_large"},
		{"huge query", "GET", "/events?topic=a&pad=" + strings.Repeat("p", 40<<10), "", nil, 431, "headers_too_large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(t.Context(), tt.method, e.srv.URL+tt.path, strings.NewReader(tt.body))
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			var body errorBody
			if err := json.Unmarshal(raw, &body); err != nil {
				t.Fatalf("status %d, body %q: not JSON", resp.StatusCode, raw)
			}
			if resp.StatusCode != tt.status || body.Code != tt.code || body.Error == "" {
				t.Fatalf("status %d %+v, want %d with code %s", resp.StatusCode, body, tt.status, tt.code)
			}
			if strings.Contains(body.Error, "natsbus:") || strings.Contains(body.Error, "sseformat:") {
				t.Errorf("error message leaks package names: %q", body.Error)
			}
		})
	}
	// The gateway still serves.
	c := e.subscribe(t, "topic=a&cachebuster=123", "")
	id := e.publish(t, "a", "", "still here")
	if got := c.next(t); got.ID != id {
		t.Fatalf("got %s, want %s", got.ID, id)
	}
}

// TestIdempotencyKeyOnOneLine: a key with a line break is refused, and nothing is stored.
// net/http refuses such a header before any handler runs, so the requests go to the
// gateway's router itself, as where its Handler is served some other way.
func TestIdempotencyKeyOnOneLine(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, nil, nil)
	for _, key := range []string{"k\nk", "k\rk", "k\r\n", strings.Repeat("k", 255) + "\n"} {
		req := httptest.NewRequestWithContext(t.Context(), "POST", "/publish/a", strings.NewReader("x"))
		req.Header[HeaderIdempotencyKey] = []string{key}
		rec := httptest.NewRecorder()
		e.gw.Handler().ServeHTTP(rec, req)
		var body errorBody
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || rec.Code != 400 || body.Code != "bad_request" {
			t.Errorf("key %q: status %d, body %q", key, rec.Code, rec.Body)
		}
	}
	// Nothing was stored: the next publish is the stream's first event.
	if id, want := e.publish(t, "a", "", "marker"), (position{epoch: e.bus.Epoch(), seq: 1}).String(); id != want {
		t.Fatalf("the publish after the refused ones got the id %s, want %s", id, want)
	}
}

func TestPublishIdempotencyKey(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, nil, nil)
	post := func() publishResponse {
		req, _ := http.NewRequest("POST", e.srv.URL+"/publish/orders", strings.NewReader("x"))
		req.Header.Set("Idempotency-Key", "order-1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var r publishResponse
		if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || resp.StatusCode != 200 {
			t.Fatalf("status %d, %v", resp.StatusCode, err)
		}
		return r
	}
	a, b := post(), post()
	if a.Duplicate || !b.Duplicate || a.ID != b.ID {
		t.Fatalf("first %+v, retry %+v: want the retry to be a duplicate with the same id", a, b)
	}
}

func TestCORS(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, func(o *Options) { o.CORSOrigins = []string{"https://app.example"} }, nil)
	do := func(method, origin string, header map[string]string) *http.Response {
		req, _ := http.NewRequestWithContext(t.Context(), method, e.srv.URL+"/publish/a", strings.NewReader("x"))
		req.Header.Set("Origin", origin)
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	pre := do("OPTIONS", "https://app.example", map[string]string{
		"Access-Control-Request-Method":  "GET",
		"Access-Control-Request-Headers": "last-event-id, authorization",
	})
	if pre.StatusCode != 204 || pre.Header.Get("Access-Control-Allow-Origin") != "https://app.example" ||
		!strings.Contains(pre.Header.Get("Access-Control-Allow-Headers"), "Last-Event-ID") ||
		!strings.Contains(pre.Header.Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Fatalf("preflight: %d %v", pre.StatusCode, pre.Header)
	}
	if r := do("POST", "https://app.example", nil); r.StatusCode != 200 || r.Header.Get("Access-Control-Allow-Origin") != "https://app.example" {
		t.Fatalf("allowed origin: %d %v", r.StatusCode, r.Header)
	}
	if r := do("POST", "https://evil.example", nil); r.StatusCode != 403 || r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("other origin: %d %v", r.StatusCode, r.Header)
	}
	if r := do("OPTIONS", "https://evil.example", map[string]string{"Access-Control-Request-Method": "GET"}); r.StatusCode != 403 {
		t.Fatalf("other origin's preflight: %d", r.StatusCode)
	}
	if r := do("POST", e.srv.URL, nil); r.StatusCode != 200 {
		t.Fatalf("same origin: %d", r.StatusCode)
	}
}
