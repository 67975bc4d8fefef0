package sseformat

import (
	"slices"
	"strconv"
	"strings"
	"time"
)

// Event is one server-sent event.
type Event struct {
	// ID is the event's id. When encoding, "" means no id field is written.
	// When decoding, it is the last event ID in force when the event was
	// dispatched (which may have been set by an earlier block).
	ID string

	// Type is the event field. "" means the default type, "message": the
	// encoder writes no event field and the decoder returns "" when no event
	// field was seen in the event's block.
	Type string

	// Data is the event's payload. Line breaks (CRLF, lone CR, LF) split it
	// into several data lines on the wire and are decoded as LF.
	Data string

	// Retry, when positive, is written as a retry field with the event, in
	// whole milliseconds rounded down and at least 1ms. When decoding, it is
	// the reconnection time set by a valid retry field inside the event's
	// block, or 0 if there was none.
	Retry time.Duration
}

const (
	prefixID    = "id: "
	prefixEvent = "event: "
	prefixRetry = "retry: "
	prefixData  = "data: "
)

// AppendEvent appends e in wire form to dst and returns the extended slice.
//
// It writes, in order, "id: <ID>" if ID is not empty, "event: <Type>" if Type
// is not empty, "retry: <milliseconds>" if Retry is positive, one
// "data: <line>" per line of Data (split on CRLF, lone CR and LF; empty Data is
// a single "data: " line, and Data ending in a line break ends with an empty
// "data: " line), and finally the blank line that dispatches the event. Every
// line ends in LF.
//
// AppendEvent does not validate e: an ID or Type containing a line break would
// inject fields into the stream. Callers validate with [Event.Validate] first.
// AppendEvent does not allocate when dst has room; [EncodedLen] gives the exact
// size needed. It is safe for concurrent use.
func AppendEvent(dst []byte, e Event) []byte {
	// Exact for single-line data and never more than EncodedLen, so a dst
	// sized by EncodedLen is never reallocated; more lines grow by append.
	dst = slices.Grow(dst, headerLen(e)+len(prefixData)+len(e.Data)+2)
	if e.ID != "" {
		dst = append(dst, prefixID...)
		dst = append(dst, e.ID...)
		dst = append(dst, '\n')
	}
	if e.Type != "" {
		dst = append(dst, prefixEvent...)
		dst = append(dst, e.Type...)
		dst = append(dst, '\n')
	}
	if e.Retry > 0 {
		dst = AppendRetry(dst, e.Retry)
	}
	dst = appendLines(dst, prefixData, e.Data)
	return append(dst, '\n')
}

// EncodedLen returns exactly len(AppendEvent(nil, e)), without allocating.
// It is meant for enforcing size limits and sizing buffers.
func EncodedLen(e Event) int {
	n := headerLen(e) + 1 // the blank line
	sp := lineSplitter{s: e.Data}
	for {
		line, ok := sp.next()
		if !ok {
			break
		}
		n += len(prefixData) + len(line) + 1
	}
	return n
}

// headerLen returns the length of the id, event and retry lines of e.
func headerLen(e Event) int {
	n := 0
	if e.ID != "" {
		n += len(prefixID) + len(e.ID) + 1
	}
	if e.Type != "" {
		n += len(prefixEvent) + len(e.Type) + 1
	}
	if e.Retry > 0 {
		n += len(prefixRetry) + decimalLen(retryMillis(e.Retry)) + 1
	}
	return n
}

// AppendComment appends text as a comment and returns the extended slice.
// Every line of text (split on CRLF, lone CR and LF) becomes a line starting
// with ":", followed by a space and the line when the line is not empty:
// "ping" becomes ": ping\n" and "" becomes ":\n". No blank line is added, so a
// comment never dispatches an event. It is safe for concurrent use.
func AppendComment(dst []byte, text string) []byte {
	sp := lineSplitter{s: text}
	for {
		line, ok := sp.next()
		if !ok {
			return dst
		}
		if line == "" {
			dst = append(dst, ":\n"...)
			continue
		}
		dst = append(dst, ": "...)
		dst = append(dst, line...)
		dst = append(dst, '\n')
	}
}

// AppendRetry appends "retry: N\n", where N is d in whole milliseconds,
// rounded down and at least 1 (a zero or negative d also writes 1, since
// "retry: 0" makes clients reconnect in a tight loop). No blank line is added.
// It is safe for concurrent use.
func AppendRetry(dst []byte, d time.Duration) []byte {
	dst = append(dst, prefixRetry...)
	dst = strconv.AppendInt(dst, retryMillis(d), 10)
	return append(dst, '\n')
}

// retryMillis returns d in whole milliseconds, at least 1.
func retryMillis(d time.Duration) int64 {
	return max(int64(d/time.Millisecond), 1)
}

// decimalLen returns the number of decimal digits of n > 0.
func decimalLen(n int64) int {
	l := 1
	for n >= 10 {
		n /= 10
		l++
	}
	return l
}

// appendLines appends one prefix+line+LF for every line of s.
func appendLines(dst []byte, prefix, s string) []byte {
	sp := lineSplitter{s: s}
	for {
		line, ok := sp.next()
		if !ok {
			return dst
		}
		dst = append(dst, prefix...)
		dst = append(dst, line...)
		dst = append(dst, '\n')
	}
}

// lineSplitter splits a string on CRLF, lone CR and LF. It always yields at
// least one line: "" yields "", and "a\n" yields "a" then "".
//
// It remembers where the next CR and LF are, so that a string full of one kind
// of line break is still split in linear time using the vectorised byte search.
type lineSplitter struct {
	s      string
	start  int
	cr, lf int  // absolute index of the next CR/LF at or after start, len(s) if none; valid once init
	init   bool // cr and lf have been computed
	done   bool
}

func (sp *lineSplitter) next() (string, bool) {
	if sp.done {
		return "", false
	}
	if !sp.init || sp.cr < sp.start {
		sp.cr = indexFrom(sp.s, sp.start, '\r')
	}
	if !sp.init || sp.lf < sp.start {
		sp.lf = indexFrom(sp.s, sp.start, '\n')
	}
	sp.init = true
	end := min(sp.cr, sp.lf)
	line := sp.s[sp.start:end]
	if end == len(sp.s) {
		sp.done = true
		return line, true
	}
	next := end + 1
	if end == sp.cr && next < len(sp.s) && sp.s[next] == '\n' {
		next++
	}
	sp.start = next
	return line, true
}

// indexFrom returns the index of the first c in s at or after from, or len(s).
func indexFrom(s string, from int, c byte) int {
	i := strings.IndexByte(s[from:], c)
	if i < 0 {
		return len(s)
	}
	return from + i
}
