package gateway

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/natsse/natsse/auth"
)

// errClientLeft ends a stream whose client closed its connection.
var errClientLeft = errors.New("gateway: the client left")

// stream is one SSE response being served. Its handler resolves where it starts, catches
// up and, on a connection it took over from net/http, parks it (see parked.go): the stream
// then has no goroutine of its own until it has something to write. A stream that cannot
// take its connection over (HTTP/2) stays on its handler's goroutine, pumping live events.
type stream struct {
	g       *Gateway
	r       streamRequest
	w       *streamWriter
	req     context.Context // the request's, until the stream takes its connection over; guarded by mu
	release func()          // gives back the stream's place under the limits
	counted bool            // among the open streams of the metrics
	expiry  *time.Timer     // stops the stream when its token expires

	conn       net.Conn      // the connection, once taken over; nil on net/http's path
	unwatch    func()        // stops watching for the client's hang-up, or
	readerDone chan struct{} // closed when the connection's reader is gone

	mu     sync.Mutex
	reason error                   // why the stream must end (errClientLeft, errTokenExpired), once known
	cancel context.CancelCauseFunc // cancels the operation in progress (see op)

	parking // the parked stream's state (parked.go)
}

// handleEvents serves GET /events: it resolves where the client resumes, sends a gap
// notice if it cannot continue exactly there (or, when it asked for them, the newest event
// of each of its topics), catches up and then follows live events.
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
	w := newStreamWriter(c.Writer, g.opts.WriteTimeout, g.metrics)
	if !g.enter(w) {
		g.metrics.opened.WithLabelValues(resultShuttingDown).Inc()
		w.comeBackLater(g.opts.Retry, "shutting down")
		return
	}
	st := &stream{g: g, r: r, w: w, req: c.Request.Context()}
	parked := false
	defer func() {
		if !parked {
			st.end()
		}
	}()
	// The stream ends when its token expires, catching up or live.
	if gr != nil && !gr.Anonymous && !gr.Expires.IsZero() {
		st.expiry = time.AfterFunc(time.Until(gr.Expires.Add(auth.Leeway)), func() { st.stop(errTokenExpired) })
	}

	release, refused, why := g.limits.openStream(g.limits.client(c.Request, gr))
	if refused != "" {
		g.metrics.opened.WithLabelValues(refused).Inc()
		w.comeBackLater(g.opts.Retry, why)
		return
	}
	st.release = release
	ctx, done := st.op()
	cursor, gp, err := g.resolveStart(ctx, r)
	done()
	if err != nil {
		switch st.stopped() {
		case errTokenExpired:
			g.metrics.opened.WithLabelValues(g.writeError(c, wrapf(auth.ErrInvalidToken, "the token expired"))).Inc()
		case errClientLeft:
			g.metrics.opened.WithLabelValues(resultClientLeft).Inc()
		default:
			g.log.Warn("stream: cannot resolve start", "err", err)
			g.metrics.opened.WithLabelValues(resultResolveFailed).Inc()
			w.comeBackLater(g.opts.Retry, "stream unavailable")
		}
		return
	}
	g.metrics.opened.WithLabelValues(resultOK).Inc()
	g.metrics.open.Add(1)
	st.counted = true
	taken := takeOver(c)
	if taken != nil {
		st.own(taken.conn)
	}
	if err := w.start(g.opts.Retry, taken); err != nil {
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
		ctx, done := st.op()
		err := g.sendLatest(ctx, s, cursor, w)
		done()
		if err != nil {
			st.fail(err)
			return
		}
		cursor = w.last
	}
	parked = st.follow(cursor)
}

// own makes conn, taken over from net/http, the stream's. Its client's hang-up is watched
// for (see hangups), or else read for on a goroutine of the stream's.
func (st *stream) own(conn net.Conn) {
	st.mu.Lock()
	st.req = context.Background() // net/http cancels the request's when the handler returns
	st.mu.Unlock()
	st.conn = conn
	var ok bool
	if st.unwatch, ok = st.g.hangups.watch(conn, func() { st.stop(errClientLeft) }); ok {
		return
	}
	st.readerDone = make(chan struct{})
	go st.read()
}

// read waits for the client to close the connection (what it sends is discarded).
func (st *stream) read() {
	defer close(st.readerDone)
	var buf [16]byte
	for {
		if _, err := st.conn.Read(buf[:]); err != nil {
			st.stop(errClientLeft)
			return
		}
	}
}

// stop ends the stream for reason: the operation in progress is cancelled, and a parked
// stream wakes to end.
func (st *stream) stop(reason error) {
	st.mu.Lock()
	if st.reason == nil {
		st.reason = reason
	}
	cancel := st.cancel
	st.mu.Unlock()
	if cancel != nil {
		cancel(reason)
	}
	st.wake()
}

// stopped returns why the stream must end, or nil while it goes on.
func (st *stream) stopped() error {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.reason == nil && st.req.Err() != nil {
		st.reason = errClientLeft
	}
	return st.reason
}

// op returns the context of a blocking operation of the stream (resolving its start,
// catching up, pumping), done when the stream must stop, and the function to call when the
// operation is over. A stream holds a context only while an operation runs: an idle one
// holds none.
func (st *stream) op() (context.Context, func()) {
	st.mu.Lock()
	defer st.mu.Unlock()
	ctx, cancel := context.WithCancelCause(st.req)
	if st.reason != nil {
		cancel(st.reason)
	}
	st.cancel = cancel
	return ctx, func() {
		st.mu.Lock()
		st.cancel = nil
		st.mu.Unlock()
		cancel(nil)
	}
}

// follow catches up from cursor, then follows live events: parked when the stream owns its
// connection, else pumping them on this goroutine. A stream that falls behind its queue
// leaves the live path and catches up again from where its client is, at its client's pace.
// follow reports whether the stream was parked; if not, it has ended (and end is due).
func (st *stream) follow(cursor uint64) (parked bool) {
	g := st.g
	for {
		s := newSubscriber(st.r.topics, st.r.envelope, g.opts.BufferSize)
		ctx, done := st.op()
		err := g.catchUp(ctx, s, cursor, st.w)
		if err == nil && st.conn != nil {
			done()
			st.park(s)
			return true
		}
		fellBehind := err == nil && g.pump(ctx, s, st.w)
		done()
		g.hub.leave(s)
		if err != nil {
			st.fail(err)
		}
		if !fellBehind {
			return false
		}
		cursor = st.w.last
	}
}

// fail ends a stream that could not go on: a stream whose token expired says so.
func (st *stream) fail(err error) {
	g := st.g
	switch st.stopped() {
	case errTokenExpired:
		g.writeTokenExpired(st.w)
	case nil:
		if !errors.Is(err, errHubClosed) && !errors.Is(err, errWrite) {
			g.log.Warn("stream: catch-up failed; the client will resume", "topics", st.r.topics, "latest", st.r.latest, "err", err)
		}
	}
}

// end releases what the stream holds, once it is over: its connection (after the end of
// the body, unless writing failed), its goroutines, its place under the limits.
func (st *stream) end() {
	st.unpark()
	if st.expiry != nil {
		st.expiry.Stop()
	}
	if st.conn != nil {
		st.w.finish()
		if st.unwatch != nil {
			st.unwatch()
		}
		st.conn.Close()
		if st.readerDone != nil {
			<-st.readerDone
		}
	}
	if st.counted {
		st.g.metrics.open.Add(-1)
	}
	if st.release != nil {
		st.release()
	}
	st.g.leave(st.w)
}
