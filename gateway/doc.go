// Package gateway serves topic streams over Server-Sent Events and accepts publishes over
// HTTP, on top of a natsbus.Bus.
//
// One live feed per Gateway follows the stream; a Hub encodes each event once and hands
// the same bytes to every connection whose topic filters match, through a bounded queue per
// connection. Events reach every connection in stream order. A connection whose queue is
// full is cut off (counted and logged) rather than slowing the feed or anyone else; the
// client reconnects with its last event id and receives what it missed from the stream's
// history. Publishers never wait for subscribers.
//
// A connection that resumes from an id first catches up — from the Hub's ring of recent
// events, or from the stream — and joins the live events in the same critical section in
// which the Hub's position is read, so that it sees every matching event exactly once.
//
// Close ends every stream, stops the feed and blocks until both are done.
package gateway
