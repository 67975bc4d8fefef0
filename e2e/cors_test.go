package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestCORS checks GATEWAY_CORS_ORIGINS: a listed origin gets a preflight answer that
// allows Last-Event-ID and streams with CORS headers; another origin is refused with a
// JSON error; a request without Origin (not from a browser page) is served.
func TestCORS(t *testing.T) {
	t.Parallel()
	const allowed = "http://app.example:8000"
	g := startGateway(t, "GATEWAY_CORS_ORIGINS="+allowed+",https://other.example")

	resp, body := g.do(t, http.MethodOptions, "/events?topic=a", nil, http.Header{
		"Origin":                         {allowed},
		"Access-Control-Request-Method":  {"GET"},
		"Access-Control-Request-Headers": {"last-event-id"},
	})
	if resp.StatusCode/100 != 2 {
		t.Fatalf("preflight: %s %s", resp.Status, body)
	}
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != allowed {
		t.Errorf("preflight: Access-Control-Allow-Origin %q, want %q", got, allowed)
	}
	if got := resp.Header.Get("Access-Control-Allow-Headers"); !strings.Contains(strings.ToLower(got), "last-event-id") {
		t.Errorf("preflight: Access-Control-Allow-Headers %q does not allow Last-Event-ID", got)
	}

	s := g.subscribeWith(t, "topic=a", streamOpts{header: http.Header{"Origin": {allowed}}})
	if got := s.resp.Header.Get("Access-Control-Allow-Origin"); got != allowed {
		t.Errorf("stream: Access-Control-Allow-Origin %q, want %q", got, allowed)
	}
	res := g.publish(t, "a", "", "cross-origin")
	if ev := s.next(t); ev.ID != res.ID {
		t.Errorf("got %+v, want %s", ev, res.ID)
	}

	resp, body = g.do(t, http.MethodGet, "/events?topic=a", nil, http.Header{"Origin": {"http://evil.example"}})
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), `"code"`) {
		t.Errorf("other origin: %s %s, want 403 with a JSON error", resp.Status, body)
	}
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "" {
		t.Errorf("other origin: Access-Control-Allow-Origin %q", got)
	}
}

// TestCORSCredentials checks the answers that let a page of another origin send the
// gateway's cookie (EventSource withCredentials): a listed origin is echoed with
// credentials allowed; "*" lets any origin in, but never with credentials.
func TestCORSCredentials(t *testing.T) {
	t.Parallel()
	const listed = "http://app.example:8000"
	for _, tc := range []struct {
		name, origins, origin, wantOrigin, wantCredentials string
	}{
		{"listed origin", listed, listed, listed, "true"},
		{"any origin", "*", "http://anyone.example", "*", ""},
		{"listed among any", "*," + listed, listed, listed, "true"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g := startGateway(t, "GATEWAY_CORS_ORIGINS="+tc.origins)
			s := g.subscribeWith(t, "topic=a", streamOpts{header: http.Header{"Origin": {tc.origin}}})
			h := s.resp.Header
			if h.Get("Access-Control-Allow-Origin") != tc.wantOrigin || h.Get("Access-Control-Allow-Credentials") != tc.wantCredentials ||
				!strings.Contains(strings.Join(h.Values("Vary"), ","), "Origin") {
				t.Errorf("headers %v: want Allow-Origin %q, Allow-Credentials %q, Vary: Origin", h, tc.wantOrigin, tc.wantCredentials)
			}
		})
	}
}

// TestCORSAnyOrigin checks GATEWAY_CORS_ORIGINS=*: a page of any origin gets
// Access-Control-Allow-Origin: * (never credentials) on the preflights of streams and
// publishes, which allow Last-Event-ID and Authorization, and on streams and publishes.
func TestCORSAnyOrigin(t *testing.T) {
	t.Parallel()
	g := startGateway(t, "GATEWAY_CORS_ORIGINS=*")
	for i, origin := range []string{"http://anyone.example", "https://other.example:8443", "null"} {
		checkAnyOrigin := func(what string, resp *http.Response, body []byte, status int) {
			t.Helper()
			h := resp.Header
			if resp.StatusCode != status || h.Get("Access-Control-Allow-Origin") != "*" || h.Get("Access-Control-Allow-Credentials") != "" {
				t.Errorf("%s from %s: %s %v %s, want %d with Access-Control-Allow-Origin: * and no credentials",
					what, origin, resp.Status, h, body, status)
			}
		}
		topic := fmt.Sprintf("any.%d", i)
		for _, pre := range []struct{ path, method, headers string }{
			{"/events?topic=" + topic, "GET", "last-event-id, authorization"},
			{"/publish/" + topic, "POST", "authorization, content-type, idempotency-key"},
		} {
			resp, body := g.do(t, http.MethodOptions, pre.path, nil, http.Header{"Origin": {origin},
				"Access-Control-Request-Method": {pre.method}, "Access-Control-Request-Headers": {pre.headers}})
			checkAnyOrigin("preflight of "+pre.method, resp, body, http.StatusNoContent)
			allowed := strings.ToLower(resp.Header.Get("Access-Control-Allow-Headers"))
			for _, want := range strings.Split(pre.headers, ", ") {
				if !strings.Contains(allowed, want) {
					t.Errorf("preflight of %s from %s: Access-Control-Allow-Headers %q lacks %s", pre.method, origin, allowed, want)
				}
			}
			if !strings.Contains(resp.Header.Get("Access-Control-Allow-Methods"), pre.method) {
				t.Errorf("preflight of %s from %s: Access-Control-Allow-Methods %q", pre.method, origin, resp.Header.Get("Access-Control-Allow-Methods"))
			}
		}
		s := g.subscribeWith(t, "topic="+topic, streamOpts{header: http.Header{"Origin": {origin}}})
		checkAnyOrigin("stream", s.resp, nil, http.StatusOK)
		resp, body := g.do(t, http.MethodPost, "/publish/"+topic, strings.NewReader("from "+origin), http.Header{"Origin": {origin}})
		checkAnyOrigin("publish", resp, body, http.StatusOK)
		if ev := s.next(t); ev.Data != "from "+origin {
			t.Errorf("stream from %s: got %+v, want the event it published", origin, ev)
		}
	}
}
