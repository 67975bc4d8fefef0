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
	srv := httptest.NewServer(StartingHandler(1500 * time.Millisecond))
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
