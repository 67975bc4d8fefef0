package gateway

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestStartingStream: while the gateway starts, a stream is answered 200 with a retry hint
// and no event, nor a blank line (some clients dispatch a block without data as an empty
// message).
func TestStartingStream(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(StartingHandler(1500*time.Millisecond, nil))
	t.Cleanup(srv.Close)
	resp, err := http.Get(srv.URL + "/events?topic=a")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream; charset=utf-8" {
		t.Fatalf("%s, Content-Type %q: want 200 and an event stream", resp.Status, resp.Header.Get("Content-Type"))
	}
	if want := ": starting\nretry: 1500\n"; string(body) != want {
		t.Errorf("body %q, want %q: a comment and the retry hint, no blank line", body, want)
	}
}

// TestStartingCORS: while the gateway starts, a browser on an allowed origin gets the CORS
// headers it gets from the gateway (EventSource gives up for good on a stream answered
// without them), and one on another origin is refused as by the gateway.
func TestStartingCORS(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(StartingHandler(time.Second, []string{"https://app.example"}))
	t.Cleanup(srv.Close)
	for _, tc := range []struct {
		origin, allow string
		status        int
	}{
		{"https://app.example", "https://app.example", http.StatusOK},
		{"https://other.example", "", http.StatusForbidden},
		{"", "", http.StatusOK},
	} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/events?topic=a", nil)
		if tc.origin != "" {
			req.Header.Set("Origin", tc.origin)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || resp.Header.Get("Access-Control-Allow-Origin") != tc.allow {
			t.Errorf("Origin %q: %s, Access-Control-Allow-Origin %q; want %d, %q", tc.origin, resp.Status,
				resp.Header.Get("Access-Control-Allow-Origin"), tc.status, tc.allow)
		}
	}
}
