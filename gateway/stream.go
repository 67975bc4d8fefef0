package gateway

import (
	"context"
	"errors"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/natsse/natsse/auth"
)

// handleEvents serves GET /events: it resolves where the client resumes, sends a gap
// notice if it cannot continue exactly there (or, when it asked for them, the newest event
// of each of its topics), catches up and then pumps live events.
func (g *Gateway) handleEvents(c *gin.Context) {
	r, err := g.parseStream(c)
	var gr *auth.Grants
	if err == nil {
		gr, err = g.grants(c, streamTokens)
	}
	if err == nil {
		err = g.authorizeStream(gr, r.topics)
	}
	if err != nil {
		g.metrics.opened.WithLabelValues(g.writeError(c, err)).Inc()
		return
	}
	var expires time.Time
	if gr != nil && !gr.Anonymous {
		expires = gr.Expires
	}
	w := newStreamWriter(c.Writer, g.opts.WriteTimeout, g.metrics)
	if !g.enter(w) {
		g.metrics.opened.WithLabelValues(resultShuttingDown).Inc()
		w.comeBackLater(g.opts.Retry, "shutting down")
		return
	}
	defer g.leave(w)
	release, refused, why := g.limits.openStream(g.limits.client(c.Request, gr))
	if refused != "" {
		g.metrics.opened.WithLabelValues(refused).Inc()
		w.comeBackLater(g.opts.Retry, why)
		return
	}
	defer release()

	// The stream ends when its token expires, catching up or live.
	ctx := c.Request.Context()
	if !expires.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadlineCause(ctx, expires.Add(auth.Leeway), errTokenExpired)
		defer cancel()
	}
	cursor, gp, err := g.resolveStart(ctx, r)
	if err != nil {
		if context.Cause(ctx) == errTokenExpired {
			g.metrics.opened.WithLabelValues(g.writeError(c, wrapf(auth.ErrInvalidToken, "the token expired"))).Inc()
			return
		}
		if ctx.Err() != nil {
			g.metrics.opened.WithLabelValues(resultClientLeft).Inc()
			return
		}
		g.log.Warn("stream: cannot resolve start", "err", err)
		g.metrics.opened.WithLabelValues(resultResolveFailed).Inc()
		w.comeBackLater(g.opts.Retry, "stream unavailable")
		return
	}
	g.metrics.opened.WithLabelValues(resultOK).Inc()
	g.metrics.open.Add(1)
	defer g.metrics.open.Add(-1)
	if err := w.start(g.opts.Retry); err != nil {
		return
	}
	w.last = cursor
	if gp != nil {
		gp.LastEventID = r.lastID
		if err := g.writeGap(w, gp, cursor); err != nil {
			return
		}
	}
	if r.latest && r.lastID == "" { // a resume position wins over latest
		s := newSubscriber(r.topics, r.envelope, g.opts.BufferSize)
		err = g.sendLatest(ctx, s, cursor, w)
		cursor = w.last
	}
	// Catch up, then follow live events. A stream that falls behind its buffer leaves the
	// live path and catches up again from where its client is, at its client's pace.
	for err == nil {
		s := newSubscriber(r.topics, r.envelope, g.opts.BufferSize)
		err = g.catchUp(ctx, s, cursor, w)
		if err == nil && !g.pump(ctx, s, w) {
			g.hub.leave(s)
			return
		}
		g.hub.leave(s)
		cursor = w.last
	}
	if context.Cause(ctx) == errTokenExpired {
		g.writeTokenExpired(w)
		return
	}
	if !errors.Is(err, errHubClosed) && ctx.Err() == nil && !errors.Is(err, errWrite) {
		g.log.Warn("stream: catch-up failed; the client will resume", "topics", r.topics, "latest", r.latest, "err", err)
	}
}
