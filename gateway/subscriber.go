package gateway

import "github.com/natsse/natsse/natsbus"

// subscriber is one SSE connection's registration in the hub. Its fields other than
// filters, envelope and queue are guarded by the hub's lock; queue is closed exactly once,
// under that lock, after cut is set.
type subscriber struct {
	filters  []string // reduced topic filters
	envelope bool
	queue    *queue

	after   uint64 // live events at or below this sequence were already sent
	lastSeq uint64 // the last event queued, to queue an event matched by two filters once
	joined  bool
	closed  bool
	cut     bool // closed because the queue was full
}

func newSubscriber(filters []string, envelope bool, queueSize int) *subscriber {
	return &subscriber{
		filters:  natsbus.ReduceFilters(filters),
		envelope: envelope,
		queue:    newQueue(queueSize),
	}
}

func (s *subscriber) matches(topic string) bool {
	for _, f := range s.filters {
		if natsbus.Covers(f, topic) {
			return true
		}
	}
	return false
}
