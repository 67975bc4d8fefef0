package gateway

import (
	"context"
	"errors"
	"fmt"

	"github.com/natsse/natsse/natsbus"
)

// maxFill bounds the events read into the ring at start: a ring configured larger fills
// the rest from the live feed, so that a start is never held up by a long read (the store
// is read at some 50,000 events/s on two cores).
const maxFill = 1 << 16

// fillRing loads the hub's ring with the stream's most recent events, up to last (the
// hub's position, before the live feed starts), so that the clients of a gateway that has
// just started — all reconnecting at once after a restart, with ids of recent events —
// catch up from memory instead of each from the stream. One read of the stream serves them
// all; each would otherwise wait for one of the few replay slots.
func (g *Gateway) fillRing(ctx context.Context, last uint64) error {
	n := uint64(min(g.opts.RecentEvents, maxFill))
	if n == 0 || last == 0 {
		return nil
	}
	after := last - min(n, last)
	epoch := g.bus.Epoch()
	evs := make([]*event, 0, min(n, 1024))
	for {
		err := g.bus.Replay(ctx, []string{">"}, after, last, func(m natsbus.Message) error {
			ev, _ := newEvent(epoch, m) // a sanitized event was logged when it was first dispatched
			evs = append(evs, ev)
			return nil
		})
		var trunc *natsbus.TruncatedError
		if errors.As(err, &trunc) { // the limits removed events meanwhile: start later
			after, evs = trunc.First-1, evs[:0]
			continue
		}
		if err != nil {
			return fmt.Errorf("fill the ring of recent events: %w", err)
		}
		break
	}
	g.hub.fill(after, evs)
	return nil
}

// fill puts evs, the stored events after the sequence after up to the hub's position, in
// order, into the ring, which holds nothing yet. It must be called before the first
// dispatch.
func (h *hub) fill(after uint64, evs []*event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ring.n > 0 || h.ring.start != h.last+1 || after > h.last {
		return // dispatched already: the ring follows the live feed
	}
	h.ring.start = after + 1
	for _, ev := range evs {
		h.ring.push(ev)
	}
}
