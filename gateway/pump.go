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
		case ev, ok := <-s.queue:
			if !ok {
				return s.cut && w.flush() == nil
			}
			g.metrics.observeLag(ev.stored) // the oldest of what is written before the flush
			if w.writeEvent(ev, s.envelope) != nil {
				return
			}
			// Write whatever else is queued, then flush once.
			for more := true; more; {
				select {
				case ev, ok := <-s.queue:
					if !ok {
						return s.cut && w.flush() == nil
					}
					if w.writeEvent(ev, s.envelope) != nil {
						return
					}
				default:
					more = false
				}
			}
			if w.flush() != nil {
				return
			}
		}
	}
}
