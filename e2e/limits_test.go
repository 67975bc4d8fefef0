package e2e

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

func forwardedFor(ip string) http.Header {
	return http.Header{"X-Forwarded-For": {"203.0.113.9, " + ip}}
}

// expectComeBackLater checks that a stream was refused the way EventSource takes well: 200,
// a retry hint, and an end without an event, nor a blank line that would end a block
// without data (some clients dispatch it as an empty message).
func expectComeBackLater(tb testing.TB, what string, resp *http.Response, body []byte, why string) {
	tb.Helper()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "retry: ") ||
		strings.Contains(string(body), "data:") || hasBlankLine(body) || !strings.Contains(string(body), why) {
		tb.Errorf("%s: %d %q, want 200 with a retry hint and %q, and no blank line", what, resp.StatusCode, body, why)
	}
}

// hasBlankLine reports whether an SSE body holds a blank line, which ends a block.
func hasBlankLine(body []byte) bool {
	s := strings.ReplaceAll(strings.ReplaceAll(string(body), "\r\n", "\n"), "\r", "\n")
	return strings.HasPrefix(s, "\n") || strings.Contains(s, "\n\n")
}

// TestStreamCaps fills the per-client and the gateway's stream caps: each refusal is a
// retry hint, and the streams already open are unaffected.
func TestStreamCaps(t *testing.T) {
	t.Parallel()
	g := startGateway(t, "GATEWAY_MAX_STREAMS=3", "GATEWAY_MAX_STREAMS_PER_CLIENT=2", "GATEWAY_TRUSTED_PROXIES=127.0.0.1")
	a1 := g.subscribeWith(t, "topic=t", streamOpts{header: forwardedFor("10.0.0.1")})
	a2 := g.subscribeWith(t, "topic=t", streamOpts{header: forwardedFor("10.0.0.1")})
	resp, body := g.do(t, http.MethodGet, "/events?topic=t", nil, forwardedFor("10.0.0.1"))
	expectComeBackLater(t, "a client's third stream", resp, body, "too many streams from this client")
	g.subscribeWith(t, "topic=t", streamOpts{header: forwardedFor("10.0.0.2")})
	resp, body = g.do(t, http.MethodGet, "/events?topic=t", nil, forwardedFor("10.0.0.3"))
	expectComeBackLater(t, "the gateway's fourth stream", resp, body, "too many streams on this gateway")

	res := g.publish(t, "t", "", "still served")
	for i, s := range []*sseStream{a1, a2} {
		if ev := s.next(t); ev.ID != res.ID {
			t.Fatalf("stream %d got %+v, want %s", i, ev, res.ID)
		}
	}
	a1.close()
	pollUntil(t, eventTimeout, "a freed stream taken by another client", func() bool {
		resp, _ := g.openStream(t, "topic=t", streamOpts{header: forwardedFor("10.0.0.3")})
		defer resp.Body.Close()
		buf := make([]byte, 64)
		n, _ := resp.Body.Read(buf)
		return resp.StatusCode == http.StatusOK && !strings.Contains(string(buf[:n]), "too many")
	})
}

// TestStreamCapUntrustedProxy sends X-Forwarded-For from an address that is not a trusted
// proxy: the header is ignored, and all streams count as the sender's.
func TestStreamCapUntrustedProxy(t *testing.T) {
	t.Parallel()
	g := startGateway(t, "GATEWAY_MAX_STREAMS_PER_CLIENT=1")
	g.subscribeWith(t, "topic=t", streamOpts{header: forwardedFor("10.0.0.1")})
	resp, body := g.do(t, http.MethodGet, "/events?topic=t", nil, forwardedFor("10.0.0.2"))
	expectComeBackLater(t, "a second stream claiming another address", resp, body, "too many streams from this client")
}

// TestPublishRate exceeds one client's publish rate: 429 with Retry-After, while another
// client publishes on.
func TestPublishRate(t *testing.T) {
	t.Parallel()
	g := startGateway(t, "GATEWAY_PUBLISH_RATE=0.5", "GATEWAY_PUBLISH_BURST=3", "GATEWAY_TRUSTED_PROXIES=127.0.0.0/8")
	s := g.subscribe(t, "topic=r")
	for i := 0; i < 3; i++ {
		mustPublish(t, g, "r", "burst", forwardedFor("10.0.0.1"))
	}
	resp, body := publishAs(t, g, "r", "one too many", forwardedFor("10.0.0.1"))
	expectRefused(t, "over the rate", resp, body, http.StatusTooManyRequests, "rate_limited", "")
	if after, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || after < 1 || after > 2 {
		t.Errorf("Retry-After %q, want the 2 s until the next publish is allowed", resp.Header.Get("Retry-After"))
	}
	other := mustPublish(t, g, "r", "another client", forwardedFor("10.0.0.2"))
	var got []string
	for len(got) < 4 {
		got = append(got, s.next(t).ID)
	}
	if got[3] != other.ID {
		t.Errorf("stream got %v, want the other client's event %s last", got, other.ID)
	}
	g.expectNothingElse(t, "r", s)
}

// TestStreamCapPerSubject counts the streams of a token's subject, from whatever address.
func TestStreamCapPerSubject(t *testing.T) {
	t.Parallel()
	g := startGateway(t, "GATEWAY_AUTH_SECRET="+authSecret, "GATEWAY_MAX_STREAMS_PER_CLIENT=1", "GATEWAY_TRUSTED_PROXIES=127.0.0.1")
	hour := time.Now().Add(time.Hour)
	u := mint(t, "u", hour, []string{"t"}, nil)
	h := forwardedFor("10.0.0.1")
	h.Set("Authorization", "Bearer "+u)
	g.subscribeWith(t, "topic=t", streamOpts{header: h})
	h2 := forwardedFor("10.0.0.2")
	h2.Set("Authorization", "Bearer "+u)
	resp, body := g.do(t, http.MethodGet, "/events?topic=t", nil, h2)
	expectComeBackLater(t, "the same subject from another address", resp, body, "too many streams from this client")
	g.subscribeWith(t, "topic=t", streamOpts{header: bearer(mint(t, "v", hour, []string{"t"}, nil))})
}
