package gateway

import (
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

// uiGet sends method to path of e with header, and returns the answer and its body.
func uiGet(t *testing.T, e *testEnv, method, path string, header map[string]string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), method, e.srv.URL+path, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return resp, string(body)
}

// wantErrorJSON checks that an answer is the JSON error with status and code.
func wantErrorJSON(t *testing.T, resp *http.Response, body string, status int, code string) {
	t.Helper()
	var e errorBody
	if err := json.Unmarshal([]byte(body), &e); err != nil || resp.StatusCode != status || e.Code != code {
		t.Errorf("%s %s: %d %q, want %d with code %s", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, body, status, code)
	}
}

// TestUIPage checks that GET / serves the page under a strict Content-Security-Policy,
// that every file it links to is served from the binary, and that the page needs no
// inline code (which the policy would block).
func TestUIPage(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, nil, nil)
	resp, page := uiGet(t, e, http.MethodGet, "/", nil)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("GET /: %d, Content-Type %q: want 200 text/html; charset=utf-8", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	csp := resp.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "default-src 'self'") || strings.Contains(csp, "unsafe") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("Content-Security-Policy %q: want default-src 'self', no unsafe-*, no framing", csp)
	}
	if resp.Header.Get("Cache-Control") != "no-cache" || resp.Header.Get("ETag") == "" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("GET /: headers %v: want Cache-Control no-cache, an ETag, nosniff", resp.Header)
	}
	// Code the policy would block: inline scripts and styles, event handler attributes.
	for _, re := range []string{`<script(\s[^>]*)?>\s*[^<\s]`, `<style`, `\sstyle=`, `\son[a-z]+=`, `javascript:`, `https?://`} {
		if m := regexp.MustCompile(re).FindString(page); m != "" {
			t.Errorf("the page has %q: the policy blocks it, or it loads from elsewhere", m)
		}
	}

	// Every file the page links to, with its content type.
	links := regexp.MustCompile(`(?:src|href)="([^"]+)"`).FindAllStringSubmatch(page, -1)
	want := map[string]string{
		"ui/app.js":      "text/javascript; charset=utf-8",
		"ui/style.css":   "text/css; charset=utf-8",
		"ui/favicon.svg": "image/svg+xml",
	}
	if len(links) != len(want) {
		t.Errorf("the page links to %q, want %d files", links, len(want))
	}
	for _, l := range links {
		ct, ok := want[l[1]]
		if !ok {
			t.Errorf("the page links to %q, not one of its files", l[1])
			continue
		}
		resp, body := uiGet(t, e, http.MethodGet, "/"+l[1], nil)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != ct || len(body) == 0 ||
			resp.Header.Get("Content-Security-Policy") != csp {
			t.Errorf("GET /%s: %d, Content-Type %q, %d bytes: want 200 %s with the page's policy", l[1], resp.StatusCode, resp.Header.Get("Content-Type"), len(body), ct)
		}
	}

	// HEAD answers like GET without the body; an unchanged page is not sent again.
	head, body := uiGet(t, e, http.MethodHead, "/", nil)
	if head.StatusCode != http.StatusOK || body != "" || head.ContentLength != int64(len(page)) || head.Header.Get("Content-Security-Policy") != csp {
		t.Errorf("HEAD /: %d, %d bytes, Content-Length %d: want 200, no body, Content-Length %d", head.StatusCode, len(body), head.ContentLength, len(page))
	}
	again, body := uiGet(t, e, http.MethodGet, "/", map[string]string{"If-None-Match": resp.Header.Get("ETag")})
	if again.StatusCode != http.StatusNotModified || body != "" {
		t.Errorf("GET / with its ETag: %d, %d bytes: want 304, no body", again.StatusCode, len(body))
	}

	for _, tc := range []struct {
		method, path string
		status       int
		code         string
	}{
		{"GET", "/ui/nope.js", 404, "not_found"},
		{"GET", "/ui/index.html", 404, "not_found"}, // its links are relative to /
		{"GET", "/ui/", 404, "not_found"},
		{"POST", "/", 405, "method_not_allowed"},
	} {
		resp, body := uiGet(t, e, tc.method, tc.path, nil)
		wantErrorJSON(t, resp, body, tc.status, tc.code)
	}
}

// TestUIOff checks that with Options.UI off, neither the page nor its files are served.
func TestUIOff(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, func(o *Options) { o.UI = false }, nil)
	for _, path := range []string{"/", "/ui/app.js"} {
		resp, body := uiGet(t, e, http.MethodGet, path, nil)
		wantErrorJSON(t, resp, body, http.StatusNotFound, "not_found")
	}
}
