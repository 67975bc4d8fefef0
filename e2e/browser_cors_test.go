package e2e

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/natsse/natsse/sseformat"
)

// fetchResult is the page's answer to publish(): the response, or why fetch failed.
type fetchResult struct {
	Status int    `json:"status"`
	Body   string `json:"body"`
	Error  string `json:"error"`
}

// fetchOpened is the page's answer to openFetchStream().
type fetchOpened struct {
	Status      int    `json:"status"`
	ContentType string `json:"contentType"`
	Error       string `json:"error"`
}

// fetchedText is what a page's fetch-based stream has read so far.
type fetchedText struct {
	Text  string `json:"text"`
	Done  bool   `json:"done"`
	Error string `json:"error"`
}

// fetchPublish publishes from page p with fetch() and expects a 200 answer.
func fetchPublish(tb testing.TB, p *page, url, body string, header map[string]string) publishResult {
	tb.Helper()
	r := eval[fetchResult](tb, p, jsCall(tb, "publish", url, body, header))
	if r.Error != "" || r.Status != 200 {
		tb.Fatalf("fetch POST %s from %s: %+v", url, p.origin, r)
	}
	var res publishResult
	if err := json.Unmarshal([]byte(r.Body), &res); err != nil {
		tb.Fatalf("fetch POST %s from %s: answer %q: %v", url, p.origin, r.Body, err)
	}
	return res
}

// waitFetched waits until the page's fetch-based stream name has read n events, and
// returns them, decoded.
func waitFetched(tb testing.TB, p *page, name string, n int) []sseformat.Event {
	tb.Helper()
	var evs []sseformat.Event
	var st fetchedText
	deadline := time.Now().Add(eventTimeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		st = eval[fetchedText](tb, p, jsCall(tb, "fetchStreamText", name))
		evs = evs[:0]
		dec := sseformat.NewDecoder(strings.NewReader(st.Text))
		for {
			ev, err := dec.Next()
			if err != nil {
				break
			}
			if len(evs) == 0 {
				ev.Retry = 0 // the stream's retry hint, in the first event's block
			}
			evs = append(evs, ev)
		}
		switch {
		case len(evs) >= n:
			return evs
		case st.Done:
			tb.Fatalf("fetched stream %s ended (%q) after %d events: %q", name, st.Error, len(evs), st.Text)
		case time.Now().After(deadline):
			tb.Fatalf("fetched stream %s: %d events after %s, want %d: %q", name, len(evs), eventTimeout, n, st.Text)
		}
		<-tick.C
	}
}

// TestBrowserCrossOrigin runs pages of two origins in Chromium, one listed in
// GATEWAY_CORS_ORIGINS and one not. The listed one subscribes with EventSource, publishes
// with a preflighted fetch (Authorization and Idempotency-Key headers) and resumes a
// fetch-based stream with a Last-Event-ID header (preflighted too). The other one can do
// none of this: its EventSource fails for good without an event, its publishes fail and
// store nothing, even a simple POST that the browser sends without a preflight.
func TestBrowserCrossOrigin(t *testing.T) {
	t.Parallel()
	requireChromium(t)
	allowedSrv, otherSrv := servePage(t), servePage(t)
	g := startGateway(t, "GATEWAY_CORS_ORIGINS="+allowedSrv.URL)
	b := newBrowser(t)
	allowed := b.open(t, allowedSrv.URL+"/")
	other := b.open(t, otherSrv.URL+"/")

	// EventSource sends no preflight: the gateway answers 403 to the other origin, which
	// makes its EventSource give up at once.
	types := []string{"from-page"}
	good := allowed.openSource(t, "x", g.url("/events?topic=x"), types)
	bad := other.openSource(t, "x", g.url("/events?topic=x"), types)
	waitOpen(t, good)
	waitState(t, bad, eventTimeout, "the other origin's EventSource to fail", func(s clientState) bool { return s.ReadyState == 2 })
	if s := bad.state(t); s.Opens != 0 || s.Errors != 1 {
		t.Errorf("other origin's EventSource: %+v, want no open and one error", s)
	}

	// A publish with Authorization and Idempotency-Key headers is preflighted; its retry
	// is recognised as a duplicate.
	header := map[string]string{
		"Authorization":   "Bearer e2e-token",
		"Idempotency-Key": "page-1",
		"Content-Type":    "text/plain;charset=UTF-8",
	}
	pubURL := g.url("/publish/x?event=from-page")
	first := fetchPublish(t, allowed, pubURL, "from the page", header)
	if first.Topic != "x" || first.Duplicate || first.ID == "" {
		t.Fatalf("publish from the page: %+v", first)
	}
	if again := fetchPublish(t, allowed, pubURL, "from the page", header); !again.Duplicate || again.ID != first.ID {
		t.Errorf("retried publish from the page: %+v, want a duplicate of %s", again, first.ID)
	}

	// From the other origin, the preflight is refused, so the browser sends nothing; a
	// simple POST goes without a preflight, and the gateway must refuse it.
	for _, tc := range []struct {
		name   string
		header map[string]string
	}{
		{"preflighted", header},
		{"simple", map[string]string{"Content-Type": "text/plain;charset=UTF-8"}},
	} {
		r := eval[fetchResult](t, other, jsCall(t, "publish", pubURL, "from the other origin", tc.header))
		if r.Error == "" {
			t.Errorf("%s publish from the other origin: %+v, want fetch to fail", tc.name, r)
		}
	}
	marker := g.publish(t, "x", "", "marker")
	if marker.Seq != first.Seq+1 {
		t.Errorf("marker stored as seq %d after the page's publish %d: the other origin's publishes were stored", marker.Seq, first.Seq)
	}
	checkCorpus(t, waitEvents(t, good, 2, eventTimeout), []expectedEvent{
		{what: "publish from the page", clientEvent: clientEvent{Type: "from-page", Data: "from the page", LastEventID: first.ID}},
		{what: "marker", clientEvent: clientEvent{Type: "message", Data: "marker", LastEventID: marker.ID}},
	})
	if s := bad.state(t); s.Count != 0 || s.ReadyState != 2 {
		t.Errorf("other origin's EventSource: %+v, want no event and readyState 2 (closed)", s)
	}

	// A fetch-based client that sends Last-Event-ID resumes after it.
	var ids []string
	for i := range 3 {
		ids = append(ids, g.publish(t, "f", "", fmt.Sprintf("f%d", i)).ID)
	}
	resume := map[string]string{"Last-Event-ID": ids[0]}
	opened := eval[fetchOpened](t, allowed, jsCall(t, "openFetchStream", "f", g.url("/events?topic=f"), resume))
	if opened.Error != "" || opened.Status != 200 || opened.ContentType != "text/event-stream; charset=utf-8" {
		t.Fatalf("fetch stream from the page: %+v", opened)
	}
	ids = append(ids, g.publish(t, "f", "", "f3").ID)
	got := waitFetched(t, allowed, "f", 3)
	eval[struct{}](t, allowed, jsCall(t, "closeFetchStream", "f"))
	want := []sseformat.Event{{ID: ids[1], Data: "f1"}, {ID: ids[2], Data: "f2"}, {ID: ids[3], Data: "f3"}}
	if !slices.Equal(got, want) {
		t.Errorf("fetch stream after %s: got %+v, want %+v", ids[0], got, want)
	}
	if r := eval[fetchOpened](t, other, jsCall(t, "openFetchStream", "f", g.url("/events?topic=f"), resume)); r.Error == "" {
		t.Errorf("fetch stream from the other origin: %+v, want fetch to fail", r)
	}
}
