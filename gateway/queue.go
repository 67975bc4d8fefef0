package gateway

import "sync"

// queue is a subscriber's bounded queue of live events: the hub pushes, the stream's
// handler takes everything queued at once. Its memory grows with what is queued, up to its
// limit, and an empty queue holds none beyond a small slice it reuses, so that an idle
// stream costs little.
type queue struct {
	limit int
	ready chan struct{} // holds a value when events are queued or the queue is closed

	mu      sync.Mutex
	events  []*event
	closed  bool
	onReady func() // called instead of signalling ready, once set (see setOnReady)
}

// maxReused is the largest slice a queue keeps for reuse: a burst's larger slice is left
// to the garbage collector once it has been written.
const maxReused = 256

func newQueue(limit int) *queue { return &queue{limit: limit, ready: make(chan struct{}, 1)} }

// push queues ev. It reports false, queueing nothing, when the queue is full or closed.
// Only the first event queued since the last take signals: whoever takes takes them all.
// For a queue with an onReady function, push returns it as wake instead of calling it:
// the caller calls it once outside its own locks (the hub's, in dispatch).
func (q *queue) push(ev *event) (queued bool, wake func()) {
	q.mu.Lock()
	if q.closed || len(q.events) >= q.limit {
		q.mu.Unlock()
		return false, nil
	}
	if q.events == nil {
		q.events = make([]*event, 0, min(q.limit, 8))
	}
	first := len(q.events) == 0
	q.events = append(q.events, ev)
	onReady := q.onReady
	q.mu.Unlock()
	if !first {
		return true, nil
	}
	if onReady != nil {
		return true, onReady
	}
	q.signal(nil)
	return true, nil
}

// close ends the queue: what is queued can still be taken, and nothing more is queued.
func (q *queue) close() {
	q.mu.Lock()
	q.closed = true
	onReady := q.onReady
	q.mu.Unlock()
	q.signal(onReady)
}

// setOnReady makes the queue call f, instead of signalling ready, when events are queued or
// the queue is closed: for a stream that has no goroutine waiting on ready (see parked.go).
func (q *queue) setOnReady(f func()) {
	q.mu.Lock()
	q.onReady = f
	q.mu.Unlock()
}

func (q *queue) signal(onReady func()) {
	if onReady != nil {
		onReady()
		return
	}
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// take returns every queued event, in order, and whether the queue is closed (then nothing
// will follow them). done is the slice of the previous take, written and given back for
// reuse.
func (q *queue) take(done []*event) (events []*event, closed bool) {
	clear(done) // no reference to written events stays behind
	if cap(done) > maxReused {
		done = nil
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	events, q.events = q.events, done[:0]
	return events, q.closed
}
