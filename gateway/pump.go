package gateway

import (
	"context"
	"time"

	"github.com/natsse/natsse/auth"
)

// pump writes live events until the client goes, the queue is closed (the client was too
// slow, or the Gateway is closing), a write fails, or the stream's token expires (the zero
// time: never). It writes whatever is queued, then flushes once; an idle stream gets a
// keep-alive comment.
func (g *Gateway) pump(ctx context.Context, s *subscriber, w *streamWriter, expires time.Time) {
	keepAlive := time.NewTicker(g.opts.KeepAlive)
	defer keepAlive.Stop()
	var expired <-chan time.Time
	if !expires.IsZero() {
		t := time.NewTimer(time.Until(expires.Add(auth.Leeway)))
		defer t.Stop()
		expired = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-expired:
			g.writeTokenExpired(w)
			return
		case <-keepAlive.C:
			if w.ping() != nil {
				return
			}
		case ev, ok := <-s.queue:
			if !ok {
				return
			}
			if w.writeEvent(ev, s.envelope) != nil {
				return
			}
			// Write whatever else is queued, then flush once.
			for more := true; more; {
				select {
				case ev, ok := <-s.queue:
					if !ok {
						w.flush()
						return
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
