package gateway

import (
	"fmt"
	"log/slog"
	"testing"

	"github.com/natsse/natsse/natsbus"
)

// epochOne is the epoch of the hubs in these tests.
func epochOne() uint64 { return 1 }

func msg(seq uint64, topic string) natsbus.Message {
	return natsbus.Message{Seq: seq, Topic: topic, Data: []byte(fmt.Sprint(seq))}
}

func drain(s *subscriber) (seqs []uint64) {
	evs, _ := s.queue.take(nil)
	for _, ev := range evs {
		seqs = append(seqs, ev.seq)
	}
	return seqs
}

func TestHubCutsSlowSubscriber(t *testing.T) {
	t.Parallel()
	h := newHub(slog.New(slog.DiscardHandler), epochOne, 0, 16)
	slow := newSubscriber([]string{"a"}, false, 2)
	fast := newSubscriber([]string{"a"}, false, 100)
	for _, s := range []*subscriber{slow, fast} {
		if r, err := h.join(s, 0); err != nil || !r.joined {
			t.Fatal(r.replayTo, err)
		}
	}
	for seq := uint64(1); seq <= 5; seq++ {
		h.dispatch(msg(seq, "a"))
	}
	if !slow.cut || !slow.closed {
		t.Fatal("slow subscriber not cut off")
	}
	if got := fmt.Sprint(drain(slow)); got != "[1 2]" {
		t.Fatalf("slow subscriber keeps %s, want [1 2]", got)
	}
	if got := fmt.Sprint(drain(fast)); got != "[1 2 3 4 5]" {
		t.Fatalf("fast subscriber got %s", got)
	}
	if h.counters.cut.Load() != 1 || h.counters.connections.Load() != 1 {
		t.Fatalf("stats: cut %d, connections %d", h.counters.cut.Load(), h.counters.connections.Load())
	}
}

func TestHubJoin(t *testing.T) {
	t.Parallel()
	h := newHub(slog.New(slog.DiscardHandler), epochOne, 10, 4)
	// The ring starts after the last sequence at start: it covers cursor 10 only.
	s := newSubscriber([]string{"a.*", "a.b"}, false, 10)
	if r, _ := h.join(s, 9); r.joined || r.replayTo != 10 {
		t.Fatalf("join from 9: replayTo %d, want a replay up to 10", r.replayTo)
	}
	for seq := uint64(11); seq <= 16; seq++ {
		h.dispatch(msg(seq, []string{"a.b", "x"}[seq%2]))
	}
	// The ring holds 13..16; from 12 it serves 14 and 16 (a.b), from 11 it cannot.
	if r, _ := h.join(s, 11); r.joined || r.replayTo != 16 {
		t.Fatalf("join from 11: replayTo %d, want 16", r.replayTo)
	}
	r, err := h.join(s, 12)
	if err != nil || !r.joined || len(r.backlog) != 2 || r.backlog[0].seq != 14 || r.backlog[1].seq != 16 {
		t.Fatalf("join from 12: %v %d %v", r.backlog, r.replayTo, err)
	}
	// Live events after the join reach s once, though two of its filters match.
	h.dispatch(msg(17, "x"))
	h.dispatch(msg(18, "a.b"))
	if got := fmt.Sprint(drain(s)); got != "[18]" {
		t.Fatalf("live: %s, want [18]", got)
	}
	// A cursor ahead of the hub drops live events up to it.
	ahead := newSubscriber([]string{"a.b"}, false, 10)
	h.join(ahead, 20)
	h.dispatch(msg(19, "a.b"))
	h.dispatch(msg(20, "a.b"))
	h.dispatch(msg(21, "a.b"))
	if got := fmt.Sprint(drain(ahead)); got != "[21]" {
		t.Fatalf("ahead: %s, want [21]", got)
	}
	h.close()
	if _, err := h.join(newSubscriber([]string{"a"}, false, 1), 21); err != errHubClosed {
		t.Fatalf("join after close: %v", err)
	}
	if !s.closed || !ahead.closed {
		t.Fatal("close left subscribers open")
	}
}

func TestLooksLike(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		got, want string
		like      bool
	}{
		{"topics", "topic", true}, {"Topic", "topic", true}, {"tpoic", "topic", true},
		{"last-event-id", "last_event_id", true}, {"lastEventId", "last_event_id", true},
		{"_", "topic", false}, {"cachebuster", "topic", false}, {"v", "event", false},
	} {
		if got := looksLike(tt.got, tt.want); got != tt.like {
			t.Errorf("looksLike(%q, %q) = %v", tt.got, tt.want, got)
		}
	}
}
