package e2e

import (
	"strings"
	"testing"
)

// TestFetchEventSourceCorpus sends the corpus of tricky payloads and event types, published
// over HTTP and NATS, to @microsoft/fetch-event-source in Node. That client dispatches a
// message for every blank line, even one ending a block without data: it must receive
// exactly the events published (as its parser reads them), and no empty message for the
// stream's retry hint.
func TestFetchEventSourceCorpus(t *testing.T) {
	t.Parallel()
	requireNode(t)
	g := startGateway(t)
	corpus := trickyCorpus()
	c := startFetchClient(t, g.url("/events?topic=corpus"))
	waitOpen(t, c)

	want := publishCorpus(t, g, "corpus", corpus)
	for i := range want {
		want[i].Data = fetchEventSourceData(want[i].Data)
	}
	end := g.publish(t, "corpus", "", "end")
	want = append(want, expectedEvent{what: "end", clientEvent: clientEvent{Type: "message", Data: "end", LastEventID: end.ID}})
	checkCorpus(t, waitEvents(t, c, len(want), eventTimeout), want)
	if s := c.state(t); s.Opens != 1 || s.Errors != 0 {
		t.Errorf("fetch-event-source state %+v: want one open, no error", s)
	}
}

// fetchEventSourceData returns the data @microsoft/fetch-event-source dispatches for an
// event whose data EventSource dispatches as data. Its parser departs from the standard in
// two ways that no server can avoid: it decodes each line's value with a TextDecoder, which
// drops a BOM that starts the value, and it joins data lines with LF only once it holds
// some data, so that leading empty lines are lost.
func fetchEventSourceData(data string) string {
	lines := strings.Split(data, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimPrefix(l, "\ufeff")
	}
	return strings.TrimLeft(strings.Join(lines, "\n"), "\n")
}

// TestFetchEventSourceComeBackLater opens a fetch-event-source stream on a gateway whose
// stream cap is reached: each answer (200, a retry hint, the end of the body) makes the
// client reconnect after the retry delay, without dispatching any message. Once a stream
// is freed, the client gets in and receives exactly the stream's events.
func TestFetchEventSourceComeBackLater(t *testing.T) {
	t.Parallel()
	requireNode(t)
	g := startGateway(t, "GATEWAY_MAX_STREAMS=1", "GATEWAY_RETRY=200ms")
	holder := g.subscribe(t, "topic=t")
	first := g.publish(t, "t", "", "published while the cap is reached")
	if ev := holder.next(t); ev.ID != first.ID {
		t.Fatalf("the stream holding the cap got %+v, want %s", ev, first.ID)
	}

	c := startFetchClient(t, g.url("/events?topic=t&last_event_id=earliest"))
	const refusals = 3
	waitState(t, c, eventTimeout, "the client to be told to come back later, again and again", func(s clientState) bool {
		return s.Opens >= refusals && s.Errors >= refusals
	})
	if evs := c.events(t, 0); len(evs) != 0 {
		t.Fatalf("answers without an event made the client dispatch %d messages, first %s", len(evs), showEvent(evs[0]))
	}

	holder.close()
	waitEvents(t, c, 1, eventTimeout)
	last := g.publish(t, "t", "", "end")
	checkCorpus(t, waitEvents(t, c, 2, eventTimeout), []expectedEvent{
		{what: "the event published before the client got in", clientEvent: clientEvent{Type: "message", Data: "published while the cap is reached", LastEventID: first.ID}},
		{what: "the last event", clientEvent: clientEvent{Type: "message", Data: "end", LastEventID: last.ID}},
	})
	t.Logf("client state %+v", c.state(t))
}
