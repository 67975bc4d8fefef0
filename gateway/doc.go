// Package gateway serves topic streams over Server-Sent Events and accepts publishes over
// HTTP, on top of a natsbus.Bus.
//
// One live feed (a natsbus.Feed) per Gateway follows the stream; the hub encodes each
// event once and hands the same bytes to every connection whose topic filters match,
// through a bounded queue per connection. Events reach every connection in stream order. A
// connection whose queue is full is taken off the live path (counted and logged) rather
// than slowing the feed or anyone else; its handler catches up again from the last event it
// wrote, at its client's pace, and rejoins. Publishers never wait for subscribers.
//
// A stream request is served in four steps, each in its own file, once auth.go and
// limits.go have let it in: resume.go turns the client's last event id into a position in
// the stream (and notices.go tells the client when it cannot continue exactly there); catchup.go sends what the client missed — from the hub's
// ring of recent events, or from the stream — and joins the live events in the same
// critical section in which the hub's position is read, so that it sees every matching
// event exactly once. Live events then go out through writer.go: an HTTP/1.1 stream takes
// its connection over from net/http (sink.go) and parks (parked.go), holding no goroutine
// while it has nothing to write; an HTTP/2 stream stays on its handler, in pump.go.
//
// # Concurrency
//
//   - The live feed's goroutine (owned by the natsbus.Feed) calls hub.dispatch for each
//     event. dispatch encodes the event outside the hub's lock, then, under the lock, puts
//     it in the ring and offers it to each matching connection's queue without blocking. It
//     logs only after releasing the lock.
//   - Each stream is served on its HTTP handler's goroutine (net/http's) until it has
//     caught up and joined the hub (under the hub's lock). An HTTP/2 stream then reads its
//     queue and writes to the client on that goroutine. An HTTP/1.1 stream parks: what gives
//     it work (its queue, its keep-alive timer, its token's expiry, its client hanging up)
//     wakes it, and a goroutine started for it runs it until it has nothing left to do; a
//     stream has at most one such goroutine at a time, and it is the only one writing to the
//     stream's client, except Shutdown, which may abort its pending write by moving the
//     deadline. On Linux one goroutine of the Gateway's waits on an epoll set of the parked
//     streams' connections for their clients to hang up (hangups_linux.go); elsewhere each
//     parked stream has a goroutine reading its connection.
//   - The hub's lock guards the ring, the subscriptions and every subscriber's queue state;
//     a subscriber's queue is closed exactly once, under it (on a cut, a leave or the
//     hub's close). The counters behind Stats are atomics; Stats takes the lock only to
//     read the hub's position.
//   - The natsbus.Presence's goroutine answers the other gateways' presence surveys with
//     hub.streamsOn, which counts the matching subscribers under the hub's lock; a GET
//     /presence counts the same way on its handler's goroutine, then waits for the others'
//     answers (at most Options.PresenceWait).
//
// A stream whose token expires ends at that moment, catching up or live: a timer stops
// it, cancelling the operation in progress or waking it where it is parked.
//
// New starts the feed and the presence responder; Shutdown stops the responder (blocking
// until its goroutine is gone), ends every stream, waits for their handlers to return
// (aborting those whose clients do not read) and for the goroutines that ran them, stops
// the hang-up watcher, then closes the feed and blocks until its goroutine is gone. The Gateway does not close the Bus.
package gateway
