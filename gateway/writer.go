package gateway

import (
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/natsse/natsse/natsbus"
	"github.com/natsse/natsse/sseformat"
)

var errWrite = errors.New("gateway: write to client failed")

// writeBatch is how many bytes of frames a stream gathers before it sends them: frames go
// out when the stream flushes, or in pieces of this size, so that a long catch-up costs one
// write per piece rather than one per event, and never waits whole in memory.
const writeBatch = 64 << 10

// batches recycles the buffers that gather frames: a stream holds one only between its
// first frame and the next flush, so an idle stream holds none.
var batches = sync.Pool{New: func() any { return new([writeBatch]byte) }}

// streamWriter writes an SSE response, with a deadline on every write. Frames are gathered
// and sent when it flushes (or once they fill a batch); until then, a write cannot fail.
type streamWriter struct {
	w       gin.ResponseWriter // the response, until the stream takes its connection over
	out     sink
	timeout time.Duration
	mu      sync.Mutex // guards the deadline: abort is called from another goroutine
	armed   time.Time  // when the current write deadline was set
	aborted bool
	failed  bool   // a write failed: the client gets nothing more
	last    uint64 // the sequence of the last event written, or where the stream began
	// unplaced: the client has no position yet (it is waiting for the newest event of each
	// of its topics); the first event written gives it one.
	unplaced bool

	metrics   *metrics
	unflushed uint64 // events written since the last flush, counted as delivered by flush
	batch     *[writeBatch]byte
	gathered  []byte // the frames not sent yet, in batch
}

func newStreamWriter(w gin.ResponseWriter, timeout time.Duration, m *metrics) *streamWriter {
	return &streamWriter{w: w, out: responseSink{w, http.NewResponseController(w)}, timeout: timeout, metrics: m}
}

func setStreamHeaders(h http.Header) {
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	h.Del("Content-Length")
}

// start sends the headers and the retry hint at once, so that the client sees the stream
// open without waiting for the first event. The hint is a line of the first event's block,
// not a block of its own: a blank line after it would end a block without data, which
// fetch-based clients and Go clients dispatch as an empty message (browsers do not).
//
// taken is the stream's connection when it was taken over (see takeOver): the response
// goes to it, its head with the hint.
func (w *streamWriter) start(retry time.Duration, taken *connSink) error {
	if taken != nil {
		w.mu.Lock()             // abort may be called at any time, from another goroutine
		w.out, w.w = taken, nil // the response is net/http's (and gin's) no more
		if w.aborted {
			w.out.SetWriteDeadline(time.Unix(1, 0))
		}
		w.mu.Unlock()
	} else {
		setStreamHeaders(w.w.Header())
		w.w.WriteHeader(http.StatusOK)
	}
	if err := w.write(sseformat.AppendRetry(nil, retry)); err != nil {
		return err
	}
	return w.flush()
}

// comeBackLater answers 200 with only a retry hint: EventSource reconnects after it,
// whereas any error status would make it give up for good. The body ends without a blank
// line, so that no client dispatches an empty message.
func (w *streamWriter) comeBackLater(retry time.Duration, why string) {
	setStreamHeaders(w.w.Header())
	w.w.WriteHeader(http.StatusOK)
	frame := sseformat.AppendComment(nil, why)
	w.write(sseformat.AppendRetry(frame, retry))
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
	w.out.SetWriteDeadline(time.Unix(1, 0))
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
		w.out.SetWriteDeadline(now.Add(w.timeout))
		w.armed = now
	}
}

// write gathers b, sending what was gathered first when b would not fit in the batch. A
// frame as large as a batch is sent at once, without being copied.
func (w *streamWriter) write(b []byte) error {
	if len(w.gathered) > 0 && len(w.gathered)+len(b) > writeBatch {
		if err := w.flush(); err != nil {
			return err
		}
	}
	if len(b) >= writeBatch {
		return w.send(b)
	}
	w.takeBatch()
	w.gathered = append(w.gathered, b...)
	return nil
}

// writeEvent writes ev, enveloped or not, and remembers its sequence.
func (w *streamWriter) writeEvent(ev *event, envelope bool) error {
	// Placed first: a frame as large as a batch leaves at once, and is counted before it does.
	w.placed(ev.seq)
	return w.write(ev.frameFor(envelope))
}

// writeStored writes m, read from the stream, as newEvent would encode it but straight
// into the batch, and remembers its sequence. It reports whether m had to be sanitized.
func (w *streamWriter) writeStored(epoch uint64, m natsbus.Message, envelope bool) (sanitized bool, err error) {
	// The frame is a little longer than its data and type; one that turns out longer than
	// the batch has room for (many lines, an envelope) just grows it, once.
	if len(w.gathered) > 0 && len(w.gathered)+len(m.Data)+len(m.Type)+2*maxIDLen > writeBatch {
		if err := w.flush(); err != nil {
			return false, err
		}
	}
	w.takeBatch()
	w.gathered, sanitized = appendStored(w.gathered, epoch, m, envelope)
	w.placed(m.Seq)
	if len(w.gathered) >= writeBatch {
		return sanitized, w.flush()
	}
	return sanitized, nil
}

func (w *streamWriter) takeBatch() {
	if w.batch == nil {
		w.batch = batches.Get().(*[writeBatch]byte)
		w.gathered = w.batch[:0]
	}
}

// placed records that the event seq was written.
func (w *streamWriter) placed(seq uint64) {
	w.last, w.unplaced = seq, false
	w.unflushed++
}

// send writes b to the response.
func (w *streamWriter) send(b []byte) error {
	w.arm()
	if _, err := w.out.Write(b); err != nil {
		w.failed = true
		return fmt.Errorf("%w: %w", errWrite, err)
	}
	return nil
}

// flush sends what was gathered, and counts the events in it as delivered.
func (w *streamWriter) flush() error {
	// Counted before the bytes leave, so that the count never lags what a client has seen.
	if w.unflushed > 0 {
		w.metrics.deliveries.Add(w.unflushed)
		w.unflushed = 0
	}
	if w.batch != nil {
		err := w.send(w.gathered)
		batches.Put(w.batch)
		w.batch, w.gathered = nil, nil
		if err != nil {
			return err
		}
	}
	w.arm()
	if err := w.out.Flush(); err != nil {
		w.failed = true
		return fmt.Errorf("%w: %w", errWrite, err)
	}
	return nil
}

// finish ends the body of a stream whose connection it owns, unless a write failed.
func (w *streamWriter) finish() {
	if c, ok := w.out.(*connSink); ok && !w.failed && w.flush() == nil {
		w.arm()
		c.finish()
	}
}
