package sseformat

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"time"
)

// DefaultMaxEventSize is the maximum event size a Decoder uses until
// SetMaxEventSize is called: 1 MiB.
const DefaultMaxEventSize = 1 << 20

const (
	initialBufSize = 4096
	// maxEmptyReads is how many (0, nil) reads in a row Next tolerates before
	// failing with io.ErrNoProgress, as bufio.Reader does.
	maxEmptyReads = 100
	bom           = "\xEF\xBB\xBF"
)

// Decoder reads events from an event stream, following the WHATWG "parsing an
// event stream" rules: lines end in CRLF, lone CR or LF (a CRLF split across
// two reads is one line end); a UTF-8 byte order mark at the very start of the
// stream is skipped; lines starting with ":" are comments; the fields "event",
// "data", "id" and "retry" are interpreted and any other field is ignored; a
// blank line dispatches the event if any data field was seen.
//
// Input bytes are passed through as they are: where a browser would decode
// invalid UTF-8 as U+FFFD, a Decoder returns the original bytes.
//
// A Decoder's memory is bounded by a small multiple of its maximum event size
// (see SetMaxEventSize): its read buffer holds at most one line of that size,
// and the current event's data, type and id are each at most that size.
//
// Next returns an event as soon as its blank line has been read. It never
// waits for more input to decide how a line ended: after a CR it returns at
// once and skips an LF that arrives next.
//
// A Decoder is not safe for concurrent use.
type Decoder struct {
	r       io.Reader
	max     int
	buf     []byte
	start   int   // buf[start:end] holds the bytes read but not yet consumed
	end     int   // (the pending bytes)
	scanned int   // buf[start:start+scanned] is known to hold no CR or LF
	lfOff   int   // buf[start:start+lfOff] is known to hold no LF, and
	lfFound bool  // buf[start+lfOff] is an LF if lfFound
	readErr error // error from the last Read, returned once the buffer is drained
	err     error // sticky error returned by Next

	bomDone bool // the first line (which may start with a BOM) has been handled
	skipLF  bool // the last line ended in CR: a following LF belongs to it

	data       []byte // data buffer
	eventType  string // event type buffer
	prevType   string // the last value of an event field, reused when repeated
	idBuf      string // last event ID buffer
	lastID     string // last event ID string, committed at each blank line
	retry      time.Duration
	blockRetry time.Duration // retry set in the current block, 0 if none

	onComment func(text string)
}

// NewDecoder returns a Decoder reading from r, with the default maximum event
// size, [DefaultMaxEventSize].
func NewDecoder(r io.Reader) *Decoder {
	return &Decoder{r: r, max: DefaultMaxEventSize}
}

// SetMaxEventSize bounds the bytes buffered for one line (excluding its line
// break) and for one event's data to n bytes. A line or event data longer than
// that makes Next return an error wrapping [ErrTooLarge], and the Decoder stays
// failed. n <= 0 restores [DefaultMaxEventSize]. Since an encoded event's lines
// and data are each shorter than the whole encoding, a Decoder with maximum n
// accepts every event e with EncodedLen(e) <= n.
func (d *Decoder) SetMaxEventSize(n int) {
	if n <= 0 {
		n = DefaultMaxEventSize
	}
	d.max = n
}

// OnComment sets a function that Next calls, before returning, with the text
// of every comment line it reads: the line without its leading ":" and without
// one space after it, if present (so a comment written by AppendComment(dst,
// "ping") is reported as "ping"). A nil fn stops reporting comments.
func (d *Decoder) OnComment(fn func(text string)) {
	d.onComment = fn
}

// LastEventID returns the last event ID: the value of the last valid id field
// as of the most recent blank line. It persists across events and is what a
// client sends as Last-Event-ID when it reconnects. An id field in an event
// cut off by the end of the stream does not change it, as in browsers.
func (d *Decoder) LastEventID() string {
	return d.lastID
}

// Retry returns the reconnection time most recently set by a valid retry field
// (ASCII digits only, in milliseconds, small enough for a time.Duration), or 0
// if there was none. A retry field in an event cut off by the end of the
// stream still counts, as in browsers, since the field takes effect when its
// line is read.
func (d *Decoder) Retry() time.Duration {
	return d.retry
}

// Next reads until the next event is dispatched and returns it. It blocks
// while it waits for input.
//
// At the end of the input Next returns io.EOF; an event cut off by the end of
// the input (not followed by its blank line) is discarded, as browsers do.
// Errors from the underlying reader are returned as they are. A line or
// event data over the maximum event size yields an error wrapping
// [ErrTooLarge]. After Next returns an error, every later call returns the
// same error.
func (d *Decoder) Next() (Event, error) {
	for d.err == nil {
		line, err := d.readLine()
		if err != nil {
			d.err = err
			break
		}
		if !d.bomDone {
			d.bomDone = true
			line = bytes.TrimPrefix(line, []byte(bom))
		}
		if ev, ok := d.processLine(line); ok {
			return ev, nil
		}
	}
	return Event{}, d.err
}

// processLine interprets one line and reports the event it dispatches, if any.
func (d *Decoder) processLine(line []byte) (Event, bool) {
	if len(line) == 0 {
		return d.dispatch()
	}
	if line[0] == ':' {
		if d.onComment != nil {
			text := line[1:]
			if len(text) > 0 && text[0] == ' ' {
				text = text[1:]
			}
			d.onComment(string(text))
		}
		return Event{}, false
	}
	name, value := line, []byte(nil)
	if i := bytes.IndexByte(line, ':'); i >= 0 {
		name, value = line[:i], line[i+1:]
		if len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
	}
	switch string(name) {
	case "event":
		// Streams usually repeat a few types: reuse the previous string
		// rather than allocating one per event.
		if string(value) != d.prevType {
			d.prevType = string(value)
		}
		d.eventType = d.prevType
	case "data":
		if len(d.data)+len(value) > d.max {
			d.err = fmt.Errorf("%w: event data longer than %d bytes", ErrTooLarge, d.max)
			return Event{}, false
		}
		d.data = append(d.data, value...)
		d.data = append(d.data, '\n')
	case "id":
		if bytes.IndexByte(value, 0) < 0 && string(value) != d.idBuf {
			d.idBuf = string(value)
		}
	case "retry":
		if ms, ok := parseRetry(value); ok {
			d.retry = time.Duration(ms) * time.Millisecond
			d.blockRetry = d.retry
		}
	}
	return Event{}, false
}

// dispatch handles a blank line.
func (d *Decoder) dispatch() (Event, bool) {
	d.lastID = d.idBuf
	retry := d.blockRetry
	d.blockRetry = 0
	if len(d.data) == 0 {
		d.eventType = ""
		return Event{}, false
	}
	ev := Event{
		ID:    d.lastID,
		Type:  d.eventType,
		Data:  string(d.data[:len(d.data)-1]),
		Retry: retry,
	}
	d.data = d.data[:0]
	d.eventType = ""
	return ev, true
}

// parseRetry parses a retry value: one or more ASCII digits, in milliseconds.
// Values too large for a time.Duration are rejected.
func parseRetry(v []byte) (int64, bool) {
	if len(v) == 0 {
		return 0, false
	}
	const limit = math.MaxInt64 / int64(time.Millisecond)
	var ms int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		ms = ms*10 + int64(c-'0')
		if ms > limit {
			return 0, false
		}
	}
	return ms, true
}

// readLine returns the next line without its line break. The line aliases the
// Decoder's buffer and is valid until the next call.
func (d *Decoder) readLine() ([]byte, error) {
	emptyReads := 0
	for {
		if d.skipLF && d.start < d.end {
			if d.buf[d.start] == '\n' {
				d.consume(1)
			}
			d.skipLF = false
		}
		pending := d.buf[d.start:d.end]
		if i := d.indexLineBreak(pending); i >= 0 {
			if i > d.max {
				return nil, d.lineTooLong()
			}
			d.skipLF = pending[i] == '\r'
			d.consume(i + 1)
			return pending[:i], nil
		}
		if len(pending) > d.max {
			return nil, d.lineTooLong()
		}
		if d.readErr != nil {
			// Anything pending is an unterminated line: discarded at EOF.
			return nil, d.readErr
		}
		d.makeRoom()
		n, err := d.r.Read(d.buf[d.end:])
		if n < 0 || n > len(d.buf)-d.end {
			return nil, fmt.Errorf("sseformat: reader returned invalid count %d", n)
		}
		d.end += n
		d.readErr = err
		if n == 0 && err == nil {
			emptyReads++
			if emptyReads >= maxEmptyReads {
				return nil, io.ErrNoProgress
			}
		} else {
			emptyReads = 0
		}
	}
}

// indexLineBreak returns the index of the first CR or LF in pending (the
// unconsumed bytes), or -1. It remembers how far it has searched, so that the
// work over a whole stream stays linear whatever the read sizes and however
// CRs and LFs are mixed.
func (d *Decoder) indexLineBreak(pending []byte) int {
	if !d.lfFound {
		if i := bytes.IndexByte(pending[d.lfOff:], '\n'); i >= 0 {
			d.lfOff += i
			d.lfFound = true
		} else {
			d.lfOff = len(pending)
		}
	}
	// pending[:lfOff] holds no LF; pending[lfOff] is one if lfFound.
	if i := bytes.IndexByte(pending[d.scanned:d.lfOff], '\r'); i >= 0 {
		return d.scanned + i
	}
	d.scanned = d.lfOff
	if d.lfFound {
		return d.lfOff
	}
	return -1
}

// consume drops n pending bytes.
func (d *Decoder) consume(n int) {
	d.start += n
	d.scanned = max(d.scanned-n, 0)
	d.lfOff -= n
	if d.lfOff < 0 {
		d.lfOff, d.lfFound = 0, false
	}
}

func (d *Decoder) lineTooLong() error {
	return fmt.Errorf("%w: line longer than %d bytes", ErrTooLarge, d.max)
}

// makeRoom makes sure buf has free space after end, moving pending bytes to
// the front or growing buf (up to max+1 bytes, enough to tell whether a line
// of max bytes has ended).
func (d *Decoder) makeRoom() {
	limit := d.max
	if limit < math.MaxInt {
		limit++
	}
	if d.buf == nil {
		d.buf = make([]byte, min(initialBufSize, limit))
	}
	if d.end < len(d.buf) {
		return
	}
	pending := d.end - d.start
	if d.start > 0 && (pending <= len(d.buf)/2 || len(d.buf) >= limit) {
		copy(d.buf, d.buf[d.start:d.end])
	} else {
		size := max(min(2*len(d.buf), limit), pending+1)
		buf := make([]byte, size)
		copy(buf, d.buf[d.start:d.end])
		d.buf = buf
	}
	d.start, d.end = 0, pending
}
