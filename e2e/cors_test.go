package e2e

import (
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
