package gateway

import (
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats-server/v2/server/gsl"
	"github.com/natsse/natsse/natsbus"
)

var errHubClosed = errors.New("gateway: closed")

// Hub fans events out to subscribers. dispatch is called by the feed, one event at a time
// in stream order; join and leave by connections. All three are safe for concurrent use.
type Hub struct {
	log   *slog.Logger
	epoch uint64

	mu       sync.Mutex
	last     uint64 // sequence of the last event dispatched
	ring     ring
	subs     *gsl.GenericSublist[*subscriber]
	all      map[*subscriber]struct{}
	closed   bool
	overflow []*subscriber

	stats hubStats
}

type hubStats struct {
	connections atomic.Int64
	dispatched  atomic.Uint64
	cut         atomic.Uint64
	sanitized   atomic.Uint64
}

func newHub(log *slog.Logger, epoch, last uint64, ringSize int) *Hub {
	return &Hub{
		log:   log,
		epoch: epoch,
		last:  last,
		ring:  newRing(ringSize, last+1),
		subs:  gsl.NewSublist[*subscriber](),
		all:   make(map[*subscriber]struct{}),
	}
}

// dispatch encodes m once and queues it for every matching subscriber without blocking.
// A subscriber whose queue is full is cut off.
func (h *Hub) dispatch(m natsbus.Message) {
	ev, sanitized := newEvent(h.epoch, m)
	if sanitized {
		if n := h.stats.sanitized.Add(1); n&(n-1) == 0 { // log the 1st, 2nd, 4th, 8th…
			h.log.Warn("event sanitized: invalid UTF-8 data or forbidden characters in the Sse-Event header",
				"topic", m.Topic, "seq", m.Seq, "sanitized_total", n)
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if m.Seq <= h.last {
		return
	}
	if m.Seq > h.last+1 {
		// Sequences the feed never saw: deleted, or removed by the limits before the feed
		// read them. Clients resuming from the store see the same history.
		h.log.Warn("feed: sequences skipped (deleted or expired before delivery)", "from", h.last+1, "to", m.Seq-1)
	}
	h.last = m.Seq
	h.ring.push(ev)
	h.stats.dispatched.Add(1)
	h.subs.Match(ev.topic, func(s *subscriber) {
		if s.closed || s.lastSeq == ev.seq || ev.seq <= s.after {
			return
		}
		s.lastSeq = ev.seq
		select {
		case s.queue <- ev:
		default:
			h.overflow = append(h.overflow, s)
		}
	})
	for i, s := range h.overflow {
		s.cut = true
		h.removeLocked(s)
		h.overflow[i] = nil
		n := h.stats.cut.Add(1)
		h.log.Info("slow client cut off: its buffer is full; it resumes from its last id",
			"topics", s.filters, "seq", ev.seq, "cut_total", n)
	}
	h.overflow = h.overflow[:0]
}

// join registers s for live events after cursor. When the ring holds the events between
// cursor and the Hub's position, it registers s and returns those that s matches, to send
// before anything queued. When it does not, it registers nothing and returns upTo > 0: the
// caller replays (cursor, upTo] from the stream and joins again from upTo.
func (h *Hub) join(s *subscriber, cursor uint64) (backlog []*event, upTo uint64, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, 0, errHubClosed
	}
	switch {
	case cursor >= h.last:
		s.after = cursor
	case h.ring.covers(cursor):
		backlog = h.ring.since(nil, cursor, s)
		s.after = h.last
	default:
		return nil, h.last, nil
	}
	s.joined = true
	h.all[s] = struct{}{}
	h.stats.connections.Add(1)
	for _, f := range s.filters {
		if err := h.subs.Insert(f, s); err != nil {
			h.removeLocked(s)
			return nil, 0, err
		}
	}
	return backlog, 0, nil
}

// position returns the sequence of the last event dispatched.
func (h *Hub) position() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.last
}

// leave unregisters s and closes its queue, if that has not happened yet.
func (h *Hub) leave(s *subscriber) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.removeLocked(s)
}

func (h *Hub) removeLocked(s *subscriber) {
	if s.joined {
		for _, f := range s.filters {
			h.subs.Remove(f, s)
		}
		s.joined = false
		delete(h.all, s)
		h.stats.connections.Add(-1)
	}
	if !s.closed {
		s.closed = true
		close(s.queue)
	}
}

// close ends every subscription and refuses new ones.
func (h *Hub) close() {
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
