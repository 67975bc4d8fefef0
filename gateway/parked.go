package gateway

import (
	"sync/atomic"
	"time"
)

// A parked stream is live, on a connection it owns, and holds no goroutine while it has
// nothing to write: only its subscriber, its writer's state, a keep-alive timer and its
// place in the Gateway's watch for hang-ups (hangups_linux.go). Whatever gives it work — events
// queued, its queue closed, the keep-alive due, its token expired, its client gone — wakes
// it (stream.stop, for the last two): a goroutine then runs it
// until it has nothing left to do, and goes once nothing came for a moment (lingerFor): a
// stream that receives events often keeps its goroutine, so that waking it costs no more
// than waking a goroutine that waits on a channel.
type parking struct {
	sub       *subscriber // the stream's registration in the hub, while parked
	keepAlive *time.Timer // sets pingDue and wakes the stream
	pingDue   atomic.Bool //
	written   []*event    // the slice of the last events written, for the queue to reuse

	kick chan struct{} // wakes the lingering goroutine

	// Guarded by the stream's mu:
	running   bool // a goroutine runs the stream
	again     bool // woken while running: run once more
	lingering bool // the goroutine waits on kick for more work
	ended     bool
}

// lingerFor is how long a parked stream's goroutine waits for more work before it goes.
const lingerFor = 20 * time.Millisecond

// park leaves the stream, live with subscriber s, to wake when it has work.
func (st *stream) park(s *subscriber) {
	st.sub = s
	st.mu.Lock() // what wakes the stream waits until it is set up
	if st.keepAlive == nil {
		st.keepAlive = time.AfterFunc(st.g.opts.KeepAlive, func() {
			st.pingDue.Store(true)
			st.wake()
		})
		st.kick = make(chan struct{}, 1)
	}
	st.mu.Unlock()
	s.queue.setOnReady(st.wake)
	st.wake() // for what was queued before
}

// wake runs a parked stream on a goroutine of its own, unless one is already running it.
func (st *stream) wake() {
	st.mu.Lock()
	if st.ended || st.keepAlive == nil { // ended, or not parked yet
		st.mu.Unlock()
		return
	}
	if st.running {
		st.again = true
		if st.lingering {
			select {
			case st.kick <- struct{}{}:
			default:
			}
		}
		st.mu.Unlock()
		return
	}
	st.running = true
	st.g.runners.Add(1)
	st.mu.Unlock()
	go st.run()
}

// run does the stream's work until there is none left for lingerFor, or the stream ends.
func (st *stream) run() {
	defer st.g.runners.Done()
	defer func() {
		// As net/http does for a handler: a panic ends the stream, not the process.
		if p := recover(); p != nil {
			st.g.log.Error("stream panic", "topics", st.r.topics, "panic", p)
			st.mu.Lock()
			st.ended, st.running = true, false
			st.mu.Unlock()
			st.w.failed = true // its state is not to be trusted: no last chunk
			st.end()
		}
	}()
	var linger *time.Timer
	defer func() {
		if linger != nil {
			linger.Stop()
		}
	}()
	for {
		st.mu.Lock()
		st.again = false
		st.mu.Unlock()
		if !st.step() {
			st.mu.Lock()
			st.ended, st.running = true, false
			st.mu.Unlock()
			st.end()
			return
		}
		st.mu.Lock()
		if !st.again {
			st.lingering = true
			st.mu.Unlock()
			if linger == nil {
				linger = time.NewTimer(lingerFor)
			} else {
				linger.Reset(lingerFor)
			}
			select {
			case <-st.kick:
			case <-linger.C:
			}
			st.mu.Lock()
			st.lingering = false
			if !st.again {
				st.running = false
				st.mu.Unlock()
				return
			}
		}
		st.mu.Unlock()
	}
}

// step writes what is queued and the keep-alive when it is due, catches up when the stream
// fell behind, and reports whether the stream goes on.
func (st *stream) step() bool {
	g, w := st.g, st.w
	if reason := st.stopped(); reason != nil {
		if reason == errTokenExpired {
			g.writeTokenExpired(w)
		}
		return false
	}
	if st.pingDue.Swap(false) {
		if w.ping() != nil {
			return false
		}
		st.keepAlive.Reset(g.opts.KeepAlive)
	}
	s := st.sub
	events, closed := s.queue.take(st.written)
	if len(events) > 0 && g.writeLive(w, s, events) != nil {
		return false
	}
	clear(events) // no reference to written events stays behind
	st.written = events[:0]
	if !closed {
		return true
	}
	st.written = nil
	g.hub.leave(s)
	// Cut: the stream fell behind its queue, and catches up from its client's position.
	return s.cut && st.follow(w.last)
}

// unpark takes the stream off the live path and stops what wakes it, for good.
func (st *stream) unpark() {
	st.mu.Lock()
	st.ended = true
	keepAlive := st.keepAlive
	st.mu.Unlock()
	if st.sub != nil {
		st.g.hub.leave(st.sub)
	}
	if keepAlive != nil {
		keepAlive.Stop()
	}
}
