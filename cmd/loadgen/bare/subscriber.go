package main

import "sync"

// subscriber is one stream's bounded queue of encoded events, shared with every other
// stream of the topic (never modified). The broker pushes without waiting; a push to a
// full queue cuts the stream instead: it gets what was queued before, then ends, and its
// client resumes from the last event it got. It is safe for concurrent use.
type subscriber struct {
	limit int
	ready chan struct{} // holds a token while events are queued or the stream is cut

	mu     sync.Mutex
	queued [][]byte
	cut    bool
}

func newSubscriber(limit int) *subscriber {
	return &subscriber{limit: limit, ready: make(chan struct{}, 1)}
}

// push queues frame and reports whether the stream is still live: false once it is cut,
// now or before.
func (s *subscriber) push(frame []byte) bool {
	s.mu.Lock()
	live := !s.cut && len(s.queued) < s.limit
	if live {
		s.queued = append(s.queued, frame)
	} else {
		s.cut = true
	}
	s.mu.Unlock()
	select {
	case s.ready <- struct{}{}:
	default:
	}
	return live
}

// take returns every event queued, oldest first, and whether the stream is cut (then
// nothing more will be queued). It reuses spare, a slice take returned before and the
// caller has done with, for the events queued next.
func (s *subscriber) take(spare [][]byte) (frames [][]byte, cut bool) {
	clear(spare)
	s.mu.Lock()
	defer s.mu.Unlock()
	frames, s.queued = s.queued, spare[:0]
	return frames, s.cut
}
