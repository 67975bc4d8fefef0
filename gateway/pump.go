package gateway

import (
	"context"
	"time"
)

// pump writes live events until ctx is done (the client went, or the stream's token
// expired: then it says so), the queue is closed (the client fell behind, or the Gateway
// is closing) or a write fails. It writes whatever is queued, then flushes once; an idle
// stream gets a keep-alive comment. It reports whether the stream fell behind: the hub
// took it off the live path, and it is to catch up from the last event written.
func (g *Gateway) pump(ctx context.Context, s *subscriber, w *streamWriter) (fellBehind bool) {
	keepAlive := time.NewTicker(g.opts.KeepAlive)
	defer keepAlive.Stop()
	var batch []*event
	for {
		select {
		case <-ctx.Done():
			if context.Cause(ctx) == errTokenExpired {
				g.writeTokenExpired(w)
			}
			return
		case <-keepAlive.C:
			if w.ping() != nil {
				return
			}
		case <-s.queue.ready:
			var closed bool
			batch, closed = s.queue.take(batch)
			if len(batch) > 0 && g.writeLive(w, s, batch) != nil {
				return
			}
			if closed {
				return s.cut
			}
		}
	}
}

// writeLive writes live events, then flushes once.
func (g *Gateway) writeLive(w *streamWriter, s *subscriber, events []*event) error {
	g.metrics.observeLag(events[0].stored) // the oldest of the write
	for _, ev := range events {
		if err := w.writeEvent(ev, s.envelope); err != nil {
			return err
		}
	}
	return w.flush()
}
