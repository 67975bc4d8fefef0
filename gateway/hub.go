package gateway

import (
	"errors"
	"log/slog"
	"sync"

	"github.com/nats-io/nats-server/v2/server/gsl"
	"github.com/natsse/natsse/natsbus"
)

var errHubClosed = errors.New("gateway: closed")

// hub fans events out to subscribers. dispatch is called by the live feed only, one event
// at a time in stream order; join, leave and the others by stream handlers, concurrently.
// The hub never logs or blocks while it holds its lock.
type hub struct {
	log   *slog.Logger
	epoch func() uint64 // the stream's epoch (Bus.Epoch), for the ids of the events it encodes

	mu     sync.Mutex
	last   uint64 // sequence of the last event dispatched
	ring   ring
	subs   *gsl.GenericSublist[*subscriber]
	all    map[*subscriber]struct{}
	closed bool

	cutOff   []cutOff // the subscribers the event being dispatched cut off; dispatch's only
	wakes    []func() // the parked streams the event being dispatched wakes; dispatch's only
	counters counters
}

// cutOff is a subscriber cut off, and the count of cuts with it.
type cutOff struct {
	s     *subscriber
	total uint64
}

func newHub(log *slog.Logger, epoch func() uint64, last uint64, ringSize int) *hub {
	return &hub{
		log:   log,
		epoch: epoch,
		last:  last,
		ring:  newRing(ringSize, last+1),
		subs:  gsl.NewSublist[*subscriber](),
		all:   make(map[*subscriber]struct{}),
	}
}

// dispatch encodes m once and queues it for every matching subscriber without blocking,
// then wakes the parked streams among them. A subscriber whose queue is full is cut off.
func (h *hub) dispatch(m natsbus.Message) {
	ev, sanitized := newEvent(h.epoch(), m)
	if sanitized {
		if n := h.counters.sanitized.Add(1); n&(n-1) == 0 { // log the 1st, 2nd, 4th, 8th…
			h.log.Warn("event sanitized: invalid UTF-8 data or forbidden characters in the Sse-Event header",
				"topic", m.Topic, "seq", m.Seq, "sanitized_total", n)
		}
	}
	h.mu.Lock()
	skippedFrom, ok := h.fanOutLocked(ev)
	h.mu.Unlock()
	if !ok {
		return
	}
	for i, wake := range h.wakes {
		wake()
		h.wakes[i] = nil
	}
	h.wakes = h.wakes[:0]
	if skippedFrom < ev.seq {
		// Sequences the feed never saw: deleted, or removed by the limits before the feed
		// read them. Clients resuming from the store see the same history.
		h.log.Warn("feed: sequences skipped (deleted or expired before delivery)", "from", skippedFrom, "to", ev.seq-1)
	}
	for i, c := range h.cutOff {
		h.log.Info("slow client fell behind: its buffer is full; it catches up from its last event",
			"topics", c.s.filters, "seq", ev.seq, "cut_total", c.total)
		h.cutOff[i] = cutOff{}
	}
	h.cutOff = h.cutOff[:0]
}

// fanOutLocked queues ev for its subscribers, and collects in h.cutOff those whose queue was
// full. It returns the first sequence after the previous event dispatched, and false when
// ev was dispatched already.
func (h *hub) fanOutLocked(ev *event) (skippedFrom uint64, ok bool) {
	if ev.seq <= h.last {
		return 0, false
	}
	skippedFrom, h.last = h.last+1, ev.seq
	h.ring.push(ev)
	h.counters.dispatched.Add(1)
	h.subs.Match(ev.topic, func(s *subscriber) {
		if s.closed || s.lastSeq == ev.seq || ev.seq <= s.after {
			return
		}
		s.lastSeq = ev.seq
		queued, wake := s.queue.push(ev)
		if !queued {
			h.cutOff = append(h.cutOff, cutOff{s: s})
		} else if wake != nil {
			h.wakes = append(h.wakes, wake)
		}
	})
	for i, c := range h.cutOff {
		c.s.cut = true
		h.removeLocked(c.s)
		h.cutOff[i].total = h.counters.cut.Add(1)
	}
	return skippedFrom, true
}

// joinResult is the hub's answer to join.
type joinResult struct {
	// joined says that the subscriber is registered for live events. backlog then holds
	// the events after the cursor that it matches, to send before anything it is queued.
	joined  bool
	backlog []*event
	// replayTo, when not joined, is the hub's position: the ring does not reach back to the
	// cursor, so the caller replays (cursor, replayTo] from the stream and joins again from
	// replayTo.
	replayTo uint64
}

// join registers s for live events after cursor, when the ring holds every event between
// cursor and the hub's position.
func (h *hub) join(s *subscriber, cursor uint64) (joinResult, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return joinResult{}, errHubClosed
	}
	var r joinResult
	switch {
	case cursor >= h.last:
		s.after = cursor
	case h.ring.covers(cursor):
		r.backlog = h.ring.since(nil, cursor, s)
		s.after = h.last
	default:
		return joinResult{replayTo: h.last}, nil
	}
	s.joined = true
	h.all[s] = struct{}{}
	h.counters.connections.Add(1)
	for _, f := range s.filters {
		if err := h.subs.Insert(f, s); err != nil {
			h.removeLocked(s)
			return joinResult{}, err
		}
	}
	r.joined = true
	return r, nil
}

// position returns the sequence of the last event dispatched.
func (h *hub) position() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.last
}

// streamsOn returns, for each literal topic, how many streams joined to live events an
// event on it would reach; a stream whose several filters match counts once. (A stream
// still catching up from the store counts once it has joined.)
func (h *hub) streamsOn(topics []string) []uint64 {
	counts := make([]uint64, len(topics))
	var seen map[*subscriber]struct{} // the streams of several filters counted for a topic
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, t := range topics {
		clear(seen)
		h.subs.Match(t, func(s *subscriber) {
			if len(s.filters) > 1 {
				if _, counted := seen[s]; counted {
					return
				}
				if seen == nil {
					seen = make(map[*subscriber]struct{})
				}
				seen[s] = struct{}{}
			}
			counts[i]++
		})
	}
	return counts
}

// stats returns a snapshot of the counters and the position.
func (h *hub) stats() Stats {
	return Stats{
		Connections: h.counters.connections.Load(),
		Dispatched:  h.counters.dispatched.Load(),
		SlowCut:     h.counters.cut.Load(),
		Sanitized:   h.counters.sanitized.Load(),
		LastSeq:     h.position(),
	}
}

// leave unregisters s and closes its queue, if that has not happened yet.
func (h *hub) leave(s *subscriber) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.removeLocked(s)
}

func (h *hub) removeLocked(s *subscriber) {
	if s.joined {
		for _, f := range s.filters {
			h.subs.Remove(f, s)
		}
		s.joined = false
		delete(h.all, s)
		h.counters.connections.Add(-1)
	}
	if !s.closed {
		s.closed = true
		s.queue.close()
	}
}

// close ends every subscription and refuses new ones.
func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.closed = true
	for s := range h.all {
		h.removeLocked(s)
	}
}
