package gateway

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/natsse/natsse/auth"
	"github.com/natsse/natsse/natsbus"
	"github.com/natsse/natsse/sseformat"
)

// TestTokenExpiresWhileCatchingUp opens a stream from the start of a long history with a
// token about to expire, and reads it slowly: the stream ends with token_expired when the
// token does, in the middle of catching up, rather than after the whole history. The same
// holds for a stream that asked for the newest event of each of many topics.
func TestTokenExpiresWhileCatchingUp(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		recent int
		latest bool
	}{{"from memory", 4096, false}, {"from the store", 0, false}, {"newest of each topic", 4096, true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			testTokenExpiresWhileCatchingUp(t, tc.recent, tc.latest)
		})
	}
}

func testTokenExpiresWhileCatchingUp(t *testing.T, recent int, latest bool) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	v, err := auth.New(auth.Options{Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	e := newTestEnv(t, func(o *Options) { o.Auth, o.RecentEvents = v, recent }, nil)
	const events = 3000 // of 4 KiB: far more than the sockets buffer
	data := []byte(strings.Repeat("x", 4096))
	// The whole history of topic h, or the newest event of each of topics h.0, h.1, …
	topic, query := func(int) string { return "h" }, "topic=h&last_event_id=earliest"
	if latest {
		topic, query = func(i int) string { return fmt.Sprint("h.", i) }, "topic=h.*&latest=true"
	}
	for i := 0; i < events; i++ {
		if _, err := e.bus.Publish(t.Context(), natsbus.Publication{Topic: topic(i), Data: data}); err != nil {
			t.Fatal(err)
		}
	}
	exp := time.Now().Add(2*time.Second - auth.Leeway) // ends 2 s from now, leeway included
	tok, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"exp": exp.Unix(), "natsse": map[string]any{"subscribe": []string{"h", "h.*"}},
	}).SignedString(secret)
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, e.srv.URL+"/events?"+query, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	// A small receive buffer, so that the kernel cannot take the whole history for the
	// slow reader.
	small := &net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	client := &http.Client{Transport: &http.Transport{DialContext: small.DialContext}}
	resp, err := client.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("stream: %v %v", resp, err)
	}
	defer resp.Body.Close()
	dec := sseformat.NewDecoder(bufio.NewReader(resp.Body))
	pace := time.NewTicker(2 * time.Millisecond) // a slow reader: 3000 events take 6 s at least
	defer pace.Stop()
	var n int
	var last, lastData sseformat.Event
	for {
		<-pace.C
		ev, err := dec.Next()
		if err != nil {
			break
		}
		last = ev
		if ev.Type == "" {
			n++
			lastData = ev
		}
	}
	if last.Type != TokenExpiredEventType {
		t.Fatalf("the stream ended after %d events with %+v, want token_expired", n, last)
	}
	if n >= events {
		t.Fatalf("all %d events were sent, although the token expired while catching up", n)
	}
	// The client resumes right after the last event it received.
	if n > 0 && last.ID != lastData.ID {
		t.Fatalf("token_expired has id %q, want the last event's %q", last.ID, lastData.ID)
	}
	t.Logf("the token expired after %d of %d events", n, events)
}
