package gateway

import (
	"strings"

	"github.com/natsse/natsse/natsbus"
)

// subscriber is one SSE connection's registration in the hub. Its fields other than
// filters, envelope and queue are guarded by the hub's lock; queue is closed exactly once,
// under that lock, after cut is set.
type subscriber struct {
	filters  []string // reduced topic filters
	literal  bool     // no filter has a wildcard: each matches the one topic equal to it
	hashes   []uint64 // when literal, topicHash of each filter
	envelope bool
	queue    *queue

	after   uint64 // live events at or below this sequence were already sent
	lastSeq uint64 // the last event queued, to queue an event matched by two filters once
	joined  bool
	closed  bool
	cut     bool // closed because the queue was full
}

func newSubscriber(filters []string, envelope bool, queueSize int) *subscriber {
	s := &subscriber{
		filters:  natsbus.ReduceFilters(filters),
		literal:  true,
		envelope: envelope,
		queue:    newQueue(queueSize),
	}
	for _, f := range s.filters {
		if strings.ContainsAny(f, "*>") {
			s.literal = false
		}
	}
	if s.literal {
		s.hashes = make([]uint64, len(s.filters))
		for i, f := range s.filters {
			s.hashes[i] = topicHash(f)
		}
	}
	return s
}

// matches reports whether one of s's filters matches topic. The hub calls it, under its
// lock, for each event of the ring that a joining subscriber catches up on.
func (s *subscriber) matches(topic string) bool {
	for _, f := range s.filters {
		if f == topic || !s.literal && natsbus.Covers(f, topic) {
			return true
		}
	}
	return false
}
