package gateway

import (
	"context"
)

// sendLatest writes, in stream order, the newest stored event of each topic that s matches,
// among the events up to cursor: the hub's position, where catching up goes on from. A topic
// whose newest event is already past cursor is left to catching up, which sends it (and
// the topic's other events after cursor), so that no event is lost or sent twice.
func (g *Gateway) sendLatest(ctx context.Context, s *subscriber, cursor uint64, w *streamWriter) error {
	w.unplaced = true
	err := g.bus.Latest(ctx, s.filters, cursor, g.writeStored(w, s))
	if err != nil {
		return err
	}
	// The client now holds every topic as of cursor.
	w.last, w.unplaced = cursor, false
	return w.flush()
}
