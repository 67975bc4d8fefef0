package gateway

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestFeedWatch: a stall is the time the checks saw the feed stand at one position behind
// the stream; moving, catching up or a check that could not tell starts it again.
func TestFeedWatch(t *testing.T) {
	var f feedWatch
	t0 := time.Unix(1000, 0)
	for _, step := range []struct {
		at        time.Duration
		pos, last uint64
		reset     bool
		want      time.Duration
	}{
		{at: 0, pos: 5, last: 9, want: 0},                                // first sight
		{at: 4 * time.Second, pos: 5, last: 9, want: 4 * time.Second},    // still
		{at: 13 * time.Second, pos: 5, last: 10, want: 13 * time.Second}, // still, the stream went on
		{at: 14 * time.Second, pos: 6, last: 10, want: 0},                // moved
		{at: 20 * time.Second, pos: 6, last: 10, want: 6 * time.Second},
		{at: 21 * time.Second, pos: 6, last: 6, want: 0}, // caught up
		{at: 30 * time.Second, pos: 6, last: 9, want: 0}, // behind again: from here
		{at: 31 * time.Second, reset: true},
		{at: 50 * time.Second, pos: 6, last: 9, want: 0}, // the reset check could not tell
		{at: 53 * time.Second, pos: 6, last: 9, want: 3 * time.Second},
	} {
		if step.reset {
			f.reset()
			continue
		}
		if got := f.stalled(step.pos, step.last, t0.Add(step.at)); got != step.want {
			t.Errorf("at %s, feed at %d, stream at %d: stalled %s, want %s", step.at, step.pos, step.last, got, step.want)
		}
	}
}

// TestReadyFeedStalled stops the live feed while events are stored: /readyz must turn 503,
// saying why, once the feed has stood still behind the stream for feedStallAfter.
func TestReadyFeedStalled(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, nil, nil)
	ready := func() (int, string) {
		resp, err := http.Get(e.srv.URL + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body struct{ Error string }
		json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body.Error
	}
	if code, why := ready(); code != http.StatusOK {
		t.Fatalf("/readyz %d (%s) before the feed stopped", code, why)
	}
	if err := e.gw.feed.Close(); err != nil {
		t.Fatal(err)
	}
	e.publish(t, "a", "", "x")
	began := time.Now()
	for {
		code, why := ready()
		if code == http.StatusServiceUnavailable {
			took := time.Since(began)
			t.Logf("503 after %s: %s", took.Round(time.Millisecond), why)
			if !strings.Contains(why, "live feed") {
				t.Errorf("/readyz 503 says %q, want the live feed named", why)
			}
			if took < feedStallAfter || took > 3*feedStallAfter {
				t.Errorf("/readyz turned 503 %s after the feed stalled, want after %s (within 3x)", took.Round(time.Millisecond), feedStallAfter)
			}
			return
		}
		if code != http.StatusOK {
			t.Fatalf("/readyz %d (%s), want 200 and then 503", code, why)
		}
		if time.Since(began) > 3*feedStallAfter {
			t.Fatalf("/readyz still 200 %s after the feed stopped behind the stream", time.Since(began).Round(time.Second))
		}
		<-time.After(250 * time.Millisecond) // probing interval
	}
}
