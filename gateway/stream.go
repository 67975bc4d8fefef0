package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/natsse/natsse/natsbus"
	"github.com/natsse/natsse/sseformat"
)

// streamRequest is a parsed GET /events.
type streamRequest struct {
	topics   []string
	lastID   string // "" = live from now; "earliest" = the whole history
	resume   position
	envelope bool
}

// lastIDEarliest asks for the whole stored history.
const lastIDEarliest = "earliest"

func (g *Gateway) parseStream(c *gin.Context) (streamRequest, error) {
	var r streamRequest
	q := c.Request.URL.Query()
	if err := checkParams(q, "topic", "last_event_id", "envelope"); err != nil {
		return r, err
	}
	r.topics = q["topic"]
	switch {
	case len(r.topics) == 0:
		return r, wrapf(errBadRequest, "at least one topic parameter is required, e.g. /events?topic=orders.eu")
	case len(r.topics) > g.opts.MaxTopics:
		return r, wrapf(errBadRequest, "%d topics: at most %d per stream", len(r.topics), g.opts.MaxTopics)
	}
	for _, t := range r.topics {
		if err := natsbus.ValidateFilter(t); err != nil {
			return r, err
		}
	}
	switch q.Get("envelope") {
	case "", "0", "false":
	case "1", "true":
		r.envelope = true
	default:
		return r, wrapf(errBadRequest, "envelope=%q: want true or false", truncate(q.Get("envelope"), 32))
	}
	// The header wins: a browser sends it when it reconnects, while the URL still carries
	// the position it first connected with.
	r.lastID = c.GetHeader("Last-Event-ID")
	if r.lastID == "" {
		r.lastID = q.Get("last_event_id")
	}
	if r.lastID != "" && r.lastID != lastIDEarliest {
		p, err := parseID(r.lastID)
		if err != nil {
			return r, err
		}
		r.resume = p
	}
	return r, nil
}

// gap is the data of the reserved "gap" event, sent first when a stream cannot continue
// exactly where the client left off.
type gap struct {
	Reason      string `json:"reason"` // "expired", "stream_reset" or "ahead"
	Message     string `json:"message"`
	LastEventID string `json:"last_event_id"` // the id the client resumed from
	ResumeID    string `json:"resume_id"`     // the position the stream continues from
	// Lost is the range of stream sequences the client may have missed (those of its
	// topics among them), when known.
	LostFromSeq uint64 `json:"lost_from_seq,omitempty"`
	LostToSeq   uint64 `json:"lost_to_seq,omitempty"`
}

// GapEventType is the reserved SSE event type of a gap notice.
const GapEventType = "gap"

// resolveStart turns the client's resume point into a sequence to continue after, and the
// gap notice to send first, if any.
func (g *Gateway) resolveStart(ctx context.Context, r streamRequest) (uint64, *gap, error) {
	if r.lastID == "" {
		return g.hub.position(), nil, nil
	}
	// Ask the stream, even when the ring holds the events: a resume must see the same
	// history, with the same gaps, on every gateway.
	first, last, err := g.bus.State(ctx)
	if err != nil {
		return 0, nil, err
	}
	switch {
	case r.lastID == lastIDEarliest:
		return first - 1, nil, nil
	case r.resume.epoch != g.hub.epoch:
		return first - 1, &gap{
			Reason:  "stream_reset",
			Message: "the id is from an earlier incarnation of the stream (deleted or wiped since); continuing from the oldest stored event",
		}, nil
	case r.resume.seq+1 < first:
		return first - 1, &gap{
			Reason:      "expired",
			Message:     "events after the id were removed by the retention limits; continuing from the oldest stored event",
			LostFromSeq: r.resume.seq + 1,
			LostToSeq:   first - 1,
		}, nil
	case r.resume.seq > last:
		return last, &gap{
			Reason:  "ahead",
			Message: "the id is beyond the end of the stream; continuing with new events",
		}, nil
	}
	return r.resume.seq, nil, nil
}

func (g *Gateway) handleEvents(c *gin.Context) {
	r, err := g.parseStream(c)
	if err != nil {
		g.writeError(c, err)
		return
	}
	w := newStreamWriter(c.Writer, g.opts.WriteTimeout)
	if !g.enter(w) {
		w.comeBackLater(g.opts.Retry, "shutting down")
		return
	}
	defer g.leave(w)

	ctx := c.Request.Context()
	cursor, gp, err := g.resolveStart(ctx, r)
	if err != nil {
		if ctx.Err() == nil { // else the client left
			g.log.Warn("stream: cannot resolve start", "err", err)
			w.comeBackLater(g.opts.Retry, "stream unavailable")
		}
		return
	}
	if err := w.start(g.opts.Retry); err != nil {
		return
	}
	if gp != nil {
		gp.LastEventID = r.lastID
		if err := g.writeGap(w, gp, cursor); err != nil {
			return
		}
	}
	s := newSubscriber(r.topics, r.envelope, g.opts.BufferSize)
	defer g.hub.leave(s)
	if err := g.catchUp(ctx, s, cursor, w); err != nil {
		if !errors.Is(err, errHubClosed) && ctx.Err() == nil && !errors.Is(err, errWrite) {
			g.log.Warn("stream: catch-up failed; the client will resume", "topics", r.topics, "err", err)
		}
		return
	}
	g.pump(ctx, s, w)
}

// writeGap sends a gap notice whose id is the position the stream continues after.
func (g *Gateway) writeGap(w *streamWriter, gp *gap, cursor uint64) error {
	gp.ResumeID = position{epoch: g.hub.epoch, seq: cursor}.String()
	data, _ := json.Marshal(gp)
	return w.write(sseformat.AppendEvent(nil, sseformat.Event{ID: gp.ResumeID, Type: GapEventType, Data: string(data)}))
}

// catchUp sends the matching events after cursor and registers s for live events, so that
// it receives each event exactly once and in order.
func (g *Gateway) catchUp(ctx context.Context, s *subscriber, cursor uint64, w *streamWriter) error {
	for {
		backlog, upTo, err := g.hub.join(s, cursor)
		if err != nil {
			return err
		}
		if upTo == 0 {
			for _, ev := range backlog {
				if err := w.write(ev.frameFor(s.envelope)); err != nil {
					return err
				}
			}
			return w.flush()
		}
		err = g.bus.Replay(ctx, s.filters, cursor, upTo, func(m natsbus.Message) error {
			ev, _ := newEvent(g.hub.epoch, m)
			return w.write(ev.frameFor(s.envelope))
		})
		var trunc *natsbus.TruncatedError
		if errors.As(err, &trunc) {
			// Retention removed events while the client was catching up: say so, and go on
			// from the oldest stored event.
			cursor = trunc.First - 1
			err = g.writeGap(w, &gap{
				Reason:      "expired",
				Message:     "events were removed by the retention limits while catching up; continuing from the oldest stored event",
				LastEventID: position{epoch: g.hub.epoch, seq: trunc.After}.String(),
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
		cursor = upTo
	}
}

// pump writes live events until the client goes, the queue is closed (the client was too
// slow, or the Gateway is closing) or a write fails.
func (g *Gateway) pump(ctx context.Context, s *subscriber, w *streamWriter) {
	keepAlive := time.NewTicker(g.opts.KeepAlive)
	defer keepAlive.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-keepAlive.C:
			if w.ping() != nil {
				return
			}
		case ev, ok := <-s.queue:
			if !ok {
				return
			}
			if w.write(ev.frameFor(s.envelope)) != nil {
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
					if w.write(ev.frameFor(s.envelope)) != nil {
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

var errWrite = errors.New("gateway: write to client failed")

// streamWriter writes an SSE response, with a deadline on every write.
type streamWriter struct {
	w       gin.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
	mu      sync.Mutex // guards the deadline: abort is called from another goroutine
	armed   time.Time  // when the current write deadline was set
	aborted bool
}

func newStreamWriter(w gin.ResponseWriter, timeout time.Duration) *streamWriter {
	return &streamWriter{w: w, rc: http.NewResponseController(w), timeout: timeout}
}

func setStreamHeaders(h http.Header) {
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	h.Del("Content-Length")
}

// start sends the headers and the retry hint at once, so that the client sees the stream
// open without waiting for the first event.
func (w *streamWriter) start(retry time.Duration) error {
	setStreamHeaders(w.w.Header())
	w.w.WriteHeader(http.StatusOK)
	if err := w.write(sseformat.AppendRetry(nil, retry)); err != nil {
		return err
	}
	if err := w.write([]byte("\n")); err != nil {
		return err
	}
	return w.flush()
}

// comeBackLater answers 200 with only a retry hint: EventSource reconnects after it,
// whereas any error status would make it give up for good.
func (w *streamWriter) comeBackLater(retry time.Duration, why string) {
	setStreamHeaders(w.w.Header())
	w.w.WriteHeader(http.StatusOK)
	frame := sseformat.AppendComment(nil, why)
	frame = sseformat.AppendRetry(frame, retry)
	w.write(append(frame, '\n'))
	w.flush()
}

func (w *streamWriter) ping() error {
	if err := w.write(sseformat.AppendComment(nil, "ping")); err != nil {
		return err
	}
	return w.flush()
}

// abort makes the pending and every later write fail at once. It is safe to call from
// another goroutine.
func (w *streamWriter) abort() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.aborted = true
	w.rc.SetWriteDeadline(time.Unix(1, 0))
}

func (w *streamWriter) arm() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.aborted {
		return
	}
	now := time.Now()
	// Re-arming costs little, but not every write needs it: a deadline set within the last
	// tenth of the timeout is close enough.
	if now.Sub(w.armed) > w.timeout/10 {
		w.rc.SetWriteDeadline(now.Add(w.timeout))
		w.armed = now
	}
}

func (w *streamWriter) write(b []byte) error {
	w.arm()
	if _, err := w.w.Write(b); err != nil {
		return fmt.Errorf("%w: %w", errWrite, err)
	}
	return nil
}

func (w *streamWriter) flush() error {
	w.arm()
	if err := w.rc.Flush(); err != nil {
		return fmt.Errorf("%w: %w", errWrite, err)
	}
	return nil
}
