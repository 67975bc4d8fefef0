package gateway

import (
	"context"
	"errors"

	"github.com/natsse/natsse/natsbus"
)

// catchUp sends the matching events after cursor and registers s for live events, so that
// it receives each event exactly once and in order: from the hub's ring when it reaches
// back to cursor, else from the stream, up to the hub's position, and then again.
func (g *Gateway) catchUp(ctx context.Context, s *subscriber, cursor uint64, w *streamWriter) error {
	for {
		r, err := g.hub.join(s, cursor)
		if err != nil {
			return err
		}
		if r.joined {
			for _, ev := range r.backlog {
				if err := ctx.Err(); err != nil { // the client left, or its token expired
					return err
				}
				if err := w.writeEvent(ev, s.envelope); err != nil {
					return err
				}
				g.metrics.replayed.Add(1)
			}
			return w.flush()
		}
		err = g.bus.Replay(ctx, s.filters, cursor, r.replayTo, g.writeStored(w, s))
		var trunc *natsbus.TruncatedError
		if errors.As(err, &trunc) {
			// Retention removed events while the client was catching up: say so, and go on
			// from the oldest stored event.
			cursor = trunc.First - 1
			err = g.writeGap(w, &gap{
				Reason:      "expired",
				Message:     "events were removed by the retention limits while catching up; continuing from the oldest stored event",
				LastEventID: position{epoch: g.bus.Epoch(), seq: trunc.After}.String(),
				LostFromSeq: trunc.After + 1,
				LostToSeq:   trunc.First - 1,
			}, cursor)
			if err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		if err := w.flush(); err != nil {
			return err
		}
		cursor = r.replayTo
	}
}

// writeStored returns the callback that writes each event read from the stream to s's
// client, counted as replayed. The events go out in batches (see streamWriter).
func (g *Gateway) writeStored(w *streamWriter, s *subscriber) func(natsbus.Message) error {
	epoch := g.bus.Epoch()
	return func(m natsbus.Message) error {
		if _, err := w.writeStored(epoch, m, s.envelope); err != nil {
			return err
		}
		g.metrics.replayed.Add(1)
		return nil
	}
}
