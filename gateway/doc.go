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
// event exactly once; pump.go then writes live events through writer.go.
//
// # Concurrency
//
//   - The live feed's goroutine (owned by the natsbus.Feed) calls hub.dispatch for each
//     event. dispatch encodes the event outside the hub's lock, then, under the lock, puts
//     it in the ring and offers it to each matching connection's queue without blocking. It
//     logs only after releasing the lock.
//   - Each stream is served on its HTTP handler's goroutine (net/http's): it catches up,
//     joins the hub (under the hub's lock), then reads its queue and writes to the client.
//     Nothing else writes to that client, except Shutdown, which may abort its pending
//     write by moving the deadline.
//   - The hub's lock guards the ring, the subscriptions and every subscriber's queue state;
//     a subscriber's queue is closed exactly once, under it (on a cut, a leave or the
//     hub's close). The counters behind Stats are atomics; Stats takes the lock only to
//     read the hub's position.
//   - The natsbus.Presence's goroutine answers the other gateways' presence surveys with
//     hub.streamsOn, which counts the matching subscribers under the hub's lock; a GET
//     /presence counts the same way on its handler's goroutine, then waits for the others'
//     answers (at most Options.PresenceWait).
//
// A stream whose token expires ends at that moment, catching up or live: its handler's
// context has the token's deadline.
//
// New starts the feed and the presence responder; Shutdown stops the responder (blocking
// until its goroutine is gone), ends every stream, waits for their handlers to return
// (aborting those whose clients do not read), then closes the feed and blocks until its
// goroutine is gone. The Gateway does not close the Bus.
package gateway
