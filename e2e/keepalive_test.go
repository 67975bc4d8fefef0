package e2e

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestStreamWire checks the response of GET /events byte by byte: status, headers, the
// retry hint flushed at once, keep-alive comments on an idle stream, and an event's frame.
func TestStreamWire(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		env       []string
		retry     string
		keepalive time.Duration
	}{
		{name: "defaults", retry: "retry: 3000\n"},
		{name: "keepalive 1s", env: []string{"GATEWAY_KEEPALIVE=1s"}, retry: "retry: 3000\n", keepalive: time.Second},
		{name: "retry 5s", env: []string{"GATEWAY_RETRY=5s", "GATEWAY_KEEPALIVE=1s"}, retry: "retry: 5000\n", keepalive: time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g := startGateway(t, tc.env...)
			opened := time.Now()
			resp, cancel := g.openStream(t, "topic=idle", streamOpts{})
			t.Cleanup(func() {
				cancel()
				resp.Body.Close()
			})
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %s", resp.Status)
			}
			for k, want := range map[string]string{
				"Content-Type":      "text/event-stream; charset=utf-8",
				"Cache-Control":     "no-cache",
				"X-Accel-Buffering": "no",
			} {
				if got := resp.Header.Get(k); got != want {
					t.Errorf("%s: %q, want %q", k, got, want)
				}
			}
			if resp.ContentLength != -1 || resp.Header.Get("Content-Length") != "" {
				t.Errorf("Content-Length %d %q, want none", resp.ContentLength, resp.Header.Get("Content-Length"))
			}
			body := readRaw(resp.Body)
			t.Cleanup(func() {
				cancel()
				<-body.done
			})
			// The retry hint arrives at once, before any event or keep-alive. It is not
			// followed by a blank line: that would end a block without data, which some
			// clients dispatch as an empty message.
			first := body.waitFor(t, 5*time.Second, "retry hint", func(b []byte) bool { return len(b) >= len(tc.retry) })
			if !bytes.HasPrefix(first, []byte(tc.retry)) {
				t.Fatalf("stream starts with %q, want %q", first, tc.retry)
			}
			const ping = ": ping\n"
			if tc.keepalive > 0 {
				b := body.waitFor(t, 10*tc.keepalive, "two keep-alive comments", func(b []byte) bool {
					return bytes.Count(b, []byte(ping)) >= 2
				})
				took := time.Since(opened)
				if n := bytes.Count(b, []byte(ping)); string(b) != tc.retry+strings.Repeat(ping, n) {
					t.Errorf("idle stream %q, want the retry hint then keep-alive comments only", b)
				}
				if took < tc.keepalive {
					t.Errorf("two keep-alives within %s, with an interval of %s", took, tc.keepalive)
				}
				t.Logf("two keep-alives after %s", took)
			}

			// Events in between: id, event (when typed), data lines and a blank line.
			res := g.publish(t, "idle", "note", "hello\nworld")
			res2 := g.publish(t, "idle", "", "")
			frame := "id: " + res.ID + "\nevent: note\ndata: hello\ndata: world\n\n" +
				"id: " + res2.ID + "\ndata: \n\n"
			b := body.waitFor(t, eventTimeout, "the events", func(b []byte) bool { return bytes.Contains(b, []byte(frame)) })
			b = bytes.TrimPrefix(b, []byte(tc.retry))
			b = bytes.ReplaceAll(b, []byte(ping), nil)
			if string(b) != frame {
				t.Errorf("stream after the retry hint, without keep-alives: %q, want %q", b, frame)
			}
			if tc.keepalive == 0 {
				return
			}
			// And keep-alives go on after it.
			n := bytes.Count(body.waitFor(t, eventTimeout, "", func([]byte) bool { return true }), []byte(ping))
			body.waitFor(t, 10*tc.keepalive, "a keep-alive after the event", func(b []byte) bool {
				return bytes.Count(b, []byte(ping)) > n
			})
		})
	}
}
