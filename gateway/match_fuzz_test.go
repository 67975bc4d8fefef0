package gateway

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/natsse/natsse/natsbus"
)

// matchTokens are the tokens that fuzzed filters and topics are made of: few, so that
// filters and topics often meet.
var matchTokens = []string{"a", "b", "c", "*", ">"}

// decodeMatchCase turns fuzz input into topic filters and topics: each byte picks a token
// (its low bits) and whether a new name starts after it (its high bits). Invalid filters
// and topics are dropped.
func decodeMatchCase(data []byte) (filters, topics []string) {
	var names []string
	var cur []string
	for _, b := range data {
		cur = append(cur, matchTokens[int(b&0x0f)%len(matchTokens)])
		if b>>4 >= 10 {
			names = append(names, strings.Join(cur, "."))
			cur = nil
		}
	}
	if len(cur) > 0 {
		names = append(names, strings.Join(cur, "."))
	}
	for i, n := range names {
		switch {
		case i%3 == 0 && natsbus.ValidateFilter(n) == nil:
			filters = append(filters, n)
		case natsbus.ValidateTopic(n) == nil:
			topics = append(topics, n)
		}
	}
	return filters, topics
}

// FuzzRingMatchesLive checks that the two ways the hub selects a subscriber's events agree:
// live dispatch (the sublist, nats-server's matcher) and catch-up from the ring
// (subscriber.matches, natsbus.Covers on the reduced filters). For any filters and events,
// a subscriber that joined before the events receives exactly the events that a
// subscriber joining after them gets from the ring.
func FuzzRingMatchesLive(f *testing.F) {
	for _, seed := range [][]byte{
		{0x00, 0xa1, 0xa0, 0x01, 0xa2, 0xa3},
		{0x00, 0x04, 0xa0, 0x00, 0x01, 0xa2},
		{0x03, 0xa4, 0x00, 0xa0, 0x01, 0x02, 0xa0},
		{0x03, 0x01, 0xa0, 0x02, 0xa3, 0x04, 0xa0, 0x01, 0xa2},
		{0x00, 0x03, 0xa4, 0x00, 0xa1, 0x00, 0x01, 0x02, 0xa0, 0xa2},
		{0x00, 0xa1, 0x00, 0xa1, 0x00, 0xa2}, // a literal filter: a.b; topics a.b, a.c
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		filters, topics := decodeMatchCase(data)
		if len(filters) == 0 || len(topics) == 0 {
			return
		}
		h := newHub(slog.New(slog.DiscardHandler), epochOne, 0, len(topics))
		live := newSubscriber(filters, false, len(topics))
		if r, err := h.join(live, 0); err != nil || !r.joined {
			t.Fatalf("join: %v %v", r, err)
		}
		for i, topic := range topics {
			h.dispatch(msg(uint64(i+1), topic))
		}
		late := newSubscriber(filters, false, 1)
		r, err := h.join(late, 0)
		if err != nil || !r.joined {
			t.Fatalf("late join: %v %v", r, err)
		}
		var fromRing []uint64
		for _, ev := range r.backlog {
			fromRing = append(fromRing, ev.seq)
		}
		fromLive := drain(live)
		if !slices.Equal(fromLive, fromRing) {
			t.Fatalf("filters %q, topics %q: live %v, ring %v", filters, topics, fromLive, fromRing)
		}
		// And both agree with NATS's own rule, on the filters as given.
		var want []uint64
		for i, topic := range topics {
			if slices.ContainsFunc(filters, func(f string) bool { return server.SubjectMatchesFilter(topic, f) }) {
				want = append(want, uint64(i+1))
			}
		}
		if !slices.Equal(fromLive, want) {
			t.Fatalf("filters %q, topics %q: delivered %v, want %v", filters, topics, fromLive, want)
		}
	})
}

func TestDecodeMatchCase(t *testing.T) {
	t.Parallel()
	filters, topics := decodeMatchCase([]byte{0x00, 0xa3, 0x00, 0xa1, 0x01, 0xa2})
	if got := fmt.Sprint(filters, topics); got != "[a.*] [a.b b.c]" {
		t.Fatalf("decoded %s", got)
	}
}
