// Package sseformat is the single place in the project that knows the
// Server-Sent Events wire format (WHATWG HTML §9.2, "Server-sent events").
//
// The encoding side is append-style and allocation-lean: [AppendEvent],
// [AppendComment] and [AppendRetry] append the wire form to a caller-owned
// buffer and never allocate when that buffer has room. An event is meant to be
// encoded once and the resulting []byte shared read-only by every connection
// that sends it; nothing in this package keeps or modifies a slice it returned.
// The encoders do not validate: callers run [Event.Validate] (or the
// individual Validate functions) first, typically when an event is published,
// and reject what it reports.
//
// Data is split on CRLF, lone CR and LF and written as one "data: " line per
// piece, so a decoder returns data with every line break as LF: "a\r\nb"
// arrives as "a\nb". Apart from that normalisation, decoding the encoding of a
// valid event yields the event again (with Retry rounded down to whole
// milliseconds).
//
// [Decoder] reads a stream following the WHATWG parsing rules. Its memory use
// is bounded by [Decoder.SetMaxEventSize]. A Decoder is not safe for concurrent
// use; the encoding functions and the Validate functions are safe to call from
// any number of goroutines.
package sseformat
