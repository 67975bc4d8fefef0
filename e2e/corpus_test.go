package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// corpusEntry is one tricky event: the browser and Node tests publish each of them over
// HTTP and over NATS and expect every client to receive exactly the same thing.
type corpusEntry struct {
	name string
	typ  string // "" publishes no type: clients see "message"
	data string
}

// trickyCorpus returns the payloads and event types that trip SSE encoders and parsers up.
func trickyCorpus() []corpusEntry {
	return []corpusEntry{
		{name: "plain", data: "hello"},
		{name: "multi-line LF", data: "line 1\nline 2\nline 3"},
		{name: "lone CR", data: "before\rafter"},
		{name: "CRLF", data: "windows\r\nline\r\nbreaks"},
		{name: "mixed breaks", data: "a\r\nb\rc\nd\r\r\ne"},
		{name: "trailing CR", data: "ends with CR\r"},
		{name: "trailing newline", data: "ends with a newline\n"},
		{name: "trailing newlines", data: "three newlines\n\n\n"},
		{name: "leading newline", data: "\nstarts with a newline"},
		{name: "only newlines", data: "\n\n"},
		{name: "empty", data: ""},
		{name: "one leading space", data: " one space"},
		{name: "two leading spaces", data: "  two spaces"},
		{name: "only spaces", data: "   "},
		{name: "trailing spaces", data: "trailing  "},
		{name: "spaces after a break", data: "a\n b\n  c"},
		{name: "tabs", data: "\ttab\tinside\t"},
		{name: "accents", data: "Ünïcödé àéîõü ñ ß Ω"},
		{name: "CJK", data: "日本語のテキスト 中文 한국어"},
		{name: "RTL", data: "שלום עולם مرحبا بالعالم \u200fend"},
		{name: "emoji", data: "😀 👍🏽 👨‍👩‍👧‍👦 🏳️‍🌈 🇫🇷"},
		{name: "JSON", data: `{"order":42,"note":"line 1\nline 2\r\n","nested":{"list":[1,2,{"s":"a\\b \"q\""}]},"empty":""}`},
		{name: "pretty JSON", data: "{\n  \"order\": 42,\n  \"items\": [\n    \"a\"\n  ]\n}\n"},
		{name: "colon first", data: ":not a comment"},
		{name: "field-like first", data: "data: not a field"},
		{name: "field-like lines", data: "first\n: comment?\nid: 99\nevent: x\nretry: 0\ndata: y\n\nafter a blank line"},
		{name: "line separators", data: "line\u2028separator\u2029paragraph\u0085next line"},
		{name: "BOM inside", data: "\ufeffstarts with a BOM"},
		{name: "NUL", data: "nul\x00inside\x00"},
		{name: "60 KiB line", data: strings.Repeat("0123456789abcdef", 60<<10/16)},
		{name: "60 KiB lines", data: bigLines(60<<10, 1024)},
		{name: "typed", typ: "created", data: "typed"},
		{name: "type message", typ: "message", data: "explicit message type"},
		{name: "type with spaces", typ: "with two spaces", data: "spaced type"},
		{name: "type unicode", typ: "ünïcödé·日本語·😀", data: "unicode type"},
		{name: "type punctuation", typ: `a.b:c/d!?#&=+%,;'"()[]{}<>|\~` + "`", data: "punctuation type"},
		{name: "typed empty", typ: "created", data: ""},
		{name: "typed multi-line", typ: "created", data: "x\r\ny\n"},
	}
}

// bigLines returns n bytes of lines of lineLen bytes each (the newline included), with a
// few empty lines and lines of spaces among them.
func bigLines(n, lineLen int) string {
	var b strings.Builder
	for i := 0; b.Len() < n; i++ {
		switch {
		case i%17 == 5:
			b.WriteString("\n")
		case i%13 == 7:
			b.WriteString(" " + strings.Repeat(" ", lineLen-2) + "\n")
		default:
			line := fmt.Sprintf("line %05d ", i)
			b.WriteString(line + strings.Repeat("x", lineLen-1-len(line)) + "\n")
		}
	}
	return b.String()[:n]
}

// corpusTypes returns the event types of corpus, for clients that must listen to each.
func corpusTypes(corpus []corpusEntry) []string {
	var types []string
	seen := map[string]bool{"": true}
	for _, e := range corpus {
		if !seen[e.typ] {
			seen[e.typ] = true
			types = append(types, e.typ)
		}
	}
	return types
}

// clientEvent is an event as an EventSource client dispatches it.
type clientEvent struct {
	Type        string `json:"type"`
	Data        string `json:"data"`
	LastEventID string `json:"lastEventId"`
}

// expectedEvent is what a client must receive for one publication.
type expectedEvent struct {
	what string // names the publication in failure messages
	clientEvent
}

// publishCorpus publishes every entry of corpus on topic twice, one after the other: over
// HTTP, then as a core NATS publish with an Sse-Event header. It returns the events an
// EventSource must dispatch, in order: the data with CRLF and CR turned into LF, the type
// ("message" when none), and the id the gateway gave (the HTTP answer's; for a NATS
// publish, the next sequence, read from /stats once the gateway has dispatched it).
func publishCorpus(tb testing.TB, g *gatewayProc, topic string, corpus []corpusEntry) []expectedEvent {
	tb.Helper()
	nc, _ := g.natsConn(tb)
	var want []expectedEvent
	for _, e := range corpus {
		res := g.publish(tb, topic, e.typ, e.data)
		typ := e.typ
		if typ == "" {
			typ = "message"
		}
		ev := clientEvent{Type: typ, Data: wireData(e.data), LastEventID: res.ID}
		want = append(want, expectedEvent{what: e.name + " (HTTP)", clientEvent: ev})

		// Nothing else publishes: the NATS publish is stored right after the HTTP one.
		// Waiting until it is dispatched keeps the next HTTP publish behind it.
		if err := nc.PublishMsg(natsMsg(topic, e.typ, e.data, "")); err != nil {
			tb.Fatalf("%s: NATS publish: %v", e.name, err)
		}
		if err := nc.Flush(); err != nil {
			tb.Fatalf("%s: NATS flush: %v", e.name, err)
		}
		seq := res.Seq + 1
		pollUntil(tb, eventTimeout, fmt.Sprintf("the NATS publish of %s as seq %d", e.name, seq), func() bool {
			return g.stats(tb).LastSeq >= seq
		})
		if last := g.stats(tb).LastSeq; last != seq {
			tb.Fatalf("%s: last_seq %d after the NATS publish, want %d: something else published", e.name, last, seq)
		}
		ev.LastEventID = formatID(epochOf(tb, res.ID), seq)
		want = append(want, expectedEvent{what: e.name + " (NATS)", clientEvent: ev})
	}
	return want
}

// sseClient is an EventSource under test: a page's in Chromium or the npm package's in
// Node. Its methods may be called from the test goroutine only.
type sseClient interface {
	// state reports how many events the client has dispatched, and how many times it
	// fired open and error.
	state(tb testing.TB) clientState
	// events returns the events dispatched so far, from the from-th on.
	events(tb testing.TB, from int) []clientEvent
}

// clientState is a client's counters.
type clientState struct {
	Count  int `json:"count"`
	Opens  int `json:"opens"`
	Errors int `json:"errors"`
	// ReadyState is the EventSource's readyState (0 connecting, 1 open, 2 closed), or
	// -1 when the client does not report it.
	ReadyState int `json:"readyState"`
}

// waitState polls c until cond holds, failing the test after timeout.
func waitState(tb testing.TB, c sseClient, timeout time.Duration, what string, cond func(clientState) bool) clientState {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		s := c.state(tb)
		if cond(s) {
			return s
		}
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %s waiting for %s; client state %+v", timeout, what, s)
		}
		<-tick.C
	}
}

// waitEvents waits until c has dispatched at least n events and returns them all.
func waitEvents(tb testing.TB, c sseClient, n int, timeout time.Duration) []clientEvent {
	tb.Helper()
	waitState(tb, c, timeout, fmt.Sprintf("%d events", n), func(s clientState) bool { return s.Count >= n })
	return c.events(tb, 0)
}

// checkCorpus compares the events a client received with the expected ones, exactly.
func checkCorpus(tb testing.TB, got []clientEvent, want []expectedEvent) {
	tb.Helper()
	bad := 0
	for i := range max(len(got), len(want)) {
		switch {
		case i >= len(want):
			tb.Errorf("event %d: unexpected %s", i, showEvent(got[i]))
		case i >= len(got):
			tb.Errorf("event %d: %s missing: want %s", i, want[i].what, showEvent(want[i].clientEvent))
		case got[i] != want[i].clientEvent:
			tb.Errorf("event %d: %s:\n got %s\nwant %s", i, want[i].what, showEvent(got[i]), showEvent(want[i].clientEvent))
		default:
			continue
		}
		if bad++; bad == 10 {
			break
		}
	}
	if bad > 0 {
		tb.Fatalf("%d events received, %d expected", len(got), len(want))
	}
}

// showEvent formats e for a failure message, quoting its fields and shortening long data.
func showEvent(e clientEvent) string {
	data := e.Data
	if len(data) > 200 {
		data = fmt.Sprintf("%s…(%d bytes)…%s", data[:80], len(data), data[len(data)-80:])
	}
	return fmt.Sprintf("{type %q, lastEventId %q, data %q}", e.Type, e.LastEventID, data)
}

// checkIDs checks that a client received exactly the events with ids want, in order.
func checkIDs(tb testing.TB, name string, got []clientEvent, want []string) {
	tb.Helper()
	bad := 0
	for i := range max(len(got), len(want)) {
		var g, w string
		if i < len(got) {
			g = got[i].LastEventID
		}
		if i < len(want) {
			w = want[i]
		}
		if g != w {
			tb.Errorf("%s: event %d: id %q, want %q", name, i, g, w)
			if bad++; bad == 10 {
				break
			}
		}
	}
	if bad > 0 {
		tb.Fatalf("%s: %d events received, %d expected", name, len(got), len(want))
	}
}
