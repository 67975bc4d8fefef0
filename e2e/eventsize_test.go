package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

// TestNATSEventOverMaxEventBytes: GATEWAY_MAX_EVENT_BYTES bounds HTTP publishes only.
// README: "Events published over NATS are delivered whatever their size (up to NATS's own
// 1 MB payload limit)". An HTTP publish of an event over the limit (and under the default
// limit) gets 413 too_large and is not stored; the same event published over NATS, and one
// near NATS's payload limit, are stored and delivered exactly.
func TestNATSEventOverMaxEventBytes(t *testing.T) {
	t.Parallel()
	const limit = 2048
	g := startGateway(t, fmt.Sprintf("GATEWAY_MAX_EVENT_BYTES=%d", limit))
	_, js := g.natsConn(t)
	s := g.subscribe(t, "topic=large")

	over := linesOf(32 << 10)
	resp, body := g.do(t, http.MethodPost, "/publish/large?event=huge", strings.NewReader(over), nil)
	expectRefused(t, fmt.Sprintf("an HTTP publish of %d bytes with a limit of %d", len(over), limit),
		resp, body, http.StatusRequestEntityTooLarge, "too_large", "")

	var acks []*jetstream.PubAck
	sent := []string{over, linesOf(900 << 10)}
	for _, data := range sent {
		ack, err := js.PublishMsg(t.Context(), natsMsg("large", "huge", data, ""))
		if err != nil {
			t.Fatalf("JetStream publish of %d bytes: %v", len(data), err)
		}
		acks = append(acks, ack)
	}
	// The first event is the first NATS one: the refused publish was not stored.
	for i, data := range sent {
		ev := s.next(t)
		if seq, err := seqOf(ev.ID, epochOf(t, ev.ID)); err != nil || seq != acks[i].Sequence {
			t.Fatalf("event %d: id %s, want the NATS event's sequence %d", i, ev.ID, acks[i].Sequence)
		}
		if ev.Type != "huge" || ev.Data != wireData(data) {
			t.Fatalf("event %s: type %q, %d bytes of data differing from the %d published", ev.ID, ev.Type, len(ev.Data), len(data))
		}
	}
	stored := readStream(t, js)
	if len(stored) != 2 || stored[0].data != sent[0] || stored[1].data != sent[1] {
		t.Errorf("the stream holds %d events, want only the NATS ones, stored as published", len(stored))
	}
}

// linesOf returns at least n bytes of text in lines of varied lengths.
func linesOf(n int) string {
	var b strings.Builder
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "line %d %s\n", i, strings.Repeat("ab", i%97))
	}
	return b.String()
}
