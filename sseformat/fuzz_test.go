package sseformat

import (
	"bytes"
	"errors"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// refDecode is a direct transcription of the WHATWG parsing rules, working on
// the whole input at once, used as the oracle for the Decoder.
func refDecode(in []byte) (events []Event, lastID string, retry time.Duration) {
	s := strings.TrimPrefix(string(in), "\uFEFF")
	var (
		data       []byte
		eventType  string
		idBuf      string
		blockRetry time.Duration
	)
	for {
		i := strings.IndexAny(s, "\r\n")
		if i < 0 {
			return events, lastID, retry // an unterminated line is discarded
		}
		line := s[:i]
		if strings.HasPrefix(s[i:], "\r\n") {
			s = s[i+2:]
		} else {
			s = s[i+1:]
		}

		if line == "" {
			lastID = idBuf
			if len(data) > 0 {
				events = append(events, Event{
					ID:    idBuf,
					Type:  eventType,
					Data:  string(data[:len(data)-1]),
					Retry: blockRetry,
				})
			}
			data, eventType, blockRetry = nil, "", 0
			continue
		}
		if strings.HasPrefix(line, ":") {
			continue
		}
		name, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch name {
		case "event":
			eventType = value
		case "data":
			data = append(data, value...)
			data = append(data, '\n')
		case "id":
			if !strings.Contains(value, "\x00") {
				idBuf = value
			}
		case "retry":
			if value != "" && strings.Trim(value, "0123456789") == "" {
				ms, err := strconv.ParseInt(value, 10, 64)
				if err == nil && ms <= math.MaxInt64/int64(time.Millisecond) {
					retry = time.Duration(ms) * time.Millisecond
					blockRetry = retry
				}
			}
		}
	}
}

// decodeChecked decodes everything from d, checking after each call that the
// Decoder holds no more than its limit allows.
func decodeChecked(t *testing.T, d *Decoder, limit int) ([]Event, error) {
	t.Helper()
	var events []Event
	for {
		ev, err := d.Next()
		if len(d.buf) > limit+1 {
			t.Fatalf("buffer of %d bytes with max %d", len(d.buf), limit)
		}
		if len(d.data) > limit+1 || len(d.eventType) > limit || len(d.idBuf) > limit {
			t.Fatalf("buffered data %d, type %d, id %d bytes with max %d",
				len(d.data), len(d.eventType), len(d.idBuf), limit)
		}
		if err != nil {
			return events, err
		}
		if len(ev.Data) > limit {
			t.Fatalf("event data of %d bytes with max %d", len(ev.Data), limit)
		}
		events = append(events, ev)
	}
}

var decodeSeeds = []string{
	"",
	"data: x\n\n",
	"data: YHOO\ndata: +2\ndata: 10\n\n",
	": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third event\n\n",
	"data\n\ndata\ndata\n\ndata:",
	"data: a\r\ndata: b\r\n\r\n",
	"data: a\rdata: b\r\r",
	"data: a\r\r\ndata: b\n\n",
	"data: a\n\r\ndata: b\n\n",
	"data: x\r",
	"\xEF\xBB\xBFdata: x\n\n",
	"\xEF\xBB\xBF\xEF\xBB\xBFdata: x\n\n",
	"\xEF\xBBdata: x\n\n",
	"event: a\ndata: 1\n\ndata: 2\n\n",
	"id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\nid\ndata: c\n\n",
	"retry: 1500\ndata: a\n\nretry: 1a\n\nretry:\n\nretry: 99999999999999999999\n\n",
	"retry: 9223372036854\n\nretry: 9223372036855\n\n",
	"id: 1\ndata: a\n\nid: 2\ndata: b\n",
	"data: " + strings.Repeat("x", 300) + "\n\n",
	strings.Repeat("data\n", 300) + "\n",
	strings.Repeat("\r", 100) + "data: x\n\n",
}

// FuzzDecode checks that the Decoder never panics, agrees with refDecode
// however its input is split into reads, and stays within its size limit.
func FuzzDecode(f *testing.F) {
	for i, s := range decodeSeeds {
		f.Add([]byte(s), uint8(i), uint16(i*7))
	}
	f.Fuzz(func(t *testing.T, in []byte, chunk uint8, maxSize uint16) {
		wantEvents, wantID, wantRetry := refDecode(in)

		// Within the default limit, every way of reading gives the oracle's answer.
		sizes := []int{int(chunk%5) + 1, int(chunk / 64), int(chunk%17) + 1}
		for name, r := range map[string]io.Reader{
			"whole":    bytes.NewReader(in),
			"one byte": iotest.OneByteReader(bytes.NewReader(in)),
			"chunks":   &chunkReader{data: in, sizes: sizes},
		} {
			d := NewDecoder(r)
			got, err := decodeChecked(t, d, DefaultMaxEventSize)
			if err != io.EOF {
				t.Fatalf("%s: error %v", name, err)
			}
			if !slices.Equal(got, wantEvents) {
				t.Fatalf("%s: events\n got %+q\nwant %+q", name, got, wantEvents)
			}
			if d.LastEventID() != wantID || d.Retry() != wantRetry {
				t.Fatalf("%s: LastEventID %q, Retry %v; want %q, %v",
					name, d.LastEventID(), d.Retry(), wantID, wantRetry)
			}
		}

		// With a small limit, the Decoder stops with ErrTooLarge or agrees,
		// and where it stops does not depend on how the input was read.
		limit := int(maxSize%512) + 1
		var first []Event
		var firstErr error
		for i, r := range []io.Reader{
			bytes.NewReader(in),
			&chunkReader{data: in, sizes: sizes},
		} {
			d := NewDecoder(r)
			d.SetMaxEventSize(limit)
			got, err := decodeChecked(t, d, limit)
			switch {
			case err == io.EOF:
				if !slices.Equal(got, wantEvents) {
					t.Fatalf("max %d: events\n got %+q\nwant %+q", limit, got, wantEvents)
				}
			case errors.Is(err, ErrTooLarge):
				if len(got) > len(wantEvents) || !slices.Equal(got, wantEvents[:len(got)]) {
					t.Fatalf("max %d: events before error\n got %+q\nwant a prefix of %+q", limit, got, wantEvents)
				}
			default:
				t.Fatalf("max %d: error %v", limit, err)
			}
			if i == 0 {
				first, firstErr = got, err
			} else if !slices.Equal(got, first) || (err == io.EOF) != (firstErr == io.EOF) {
				t.Fatalf("max %d: whole input gave %d events, %v; chunked gave %d events, %v",
					limit, len(first), firstErr, len(got), err)
			}
		}
	})
}

// normalizeBreaks turns every CRLF and lone CR into LF, as the wire does.
func normalizeBreaks(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\r", "\n")
}

// FuzzRoundTrip checks that decoding the encoding of any valid event gives
// the event back (line breaks in Data as LF, Retry in whole milliseconds).
func FuzzRoundTrip(f *testing.F) {
	seeds := []Event{
		{},
		{ID: "1", Type: "update", Data: "hello", Retry: 3 * time.Second},
		{Data: "a\nb\r\nc\rd"},
		{Data: "x\n"},
		{Data: "\r"},
		{Data: "\r\n\r\n"},
		{Data: "\n\r"},
		{Data: " leading"},
		{Type: " t", Data: "  two"},
		{ID: "a:b", Data: ": not a comment"},
		{ID: "é", Type: "ünï", Data: "日本語 🎉"},
		{Data: "\uFEFFbom"},
		{Data: "nul\x00inside"},
		{Retry: time.Nanosecond},
		{Retry: 1<<63 - 1},
		{ID: " bad"},
		{Type: "a\nb"},
		{Data: "\xff"},
	}
	for _, e := range seeds {
		f.Add(e.ID, e.Type, e.Data, int64(e.Retry))
	}
	f.Fuzz(func(t *testing.T, id, typ, data string, retry int64) {
		e := Event{ID: id, Type: typ, Data: data, Retry: time.Duration(retry)}
		enc := AppendEvent([]byte("prefix"), e)
		if !bytes.HasPrefix(enc, []byte("prefix")) {
			t.Fatalf("AppendEvent changed dst's contents")
		}
		enc = enc[len("prefix"):]
		n := EncodedLen(e)
		if n != len(enc) {
			t.Fatalf("EncodedLen = %d, len(AppendEvent) = %d", n, len(enc))
		}
		if exact := AppendEvent(make([]byte, 0, n), e); cap(exact) != n {
			t.Fatalf("AppendEvent reallocated a buffer of EncodedLen = %d bytes", n)
		}
		if err := e.Validate(); err != nil {
			t.Skip(err)
		}

		want := e
		want.Data = normalizeBreaks(e.Data)
		if e.Retry > 0 {
			want.Retry = max(e.Retry.Truncate(time.Millisecond), time.Millisecond)
		}

		d := NewDecoder(bytes.NewReader(enc))
		d.SetMaxEventSize(len(enc))
		got, err := decodeChecked(t, d, len(enc))
		if err != io.EOF || len(got) != 1 || got[0] != want {
			t.Fatalf("decode(%q) = %+q, %v; want %+q", enc, got, err, want)
		}
		if d.LastEventID() != want.ID || d.Retry() != want.Retry {
			t.Fatalf("LastEventID %q, Retry %v; want %q, %v", d.LastEventID(), d.Retry(), want.ID, want.Retry)
		}

		// Twice, with a comment between, read one byte at a time.
		stream := slices.Clone(enc)
		stream = AppendComment(stream, data)
		stream = append(stream, enc...)
		got, err = decodeChecked(t, NewDecoder(iotest.OneByteReader(bytes.NewReader(stream))), DefaultMaxEventSize)
		if err != io.EOF || len(got) != 2 || got[0] != want || got[1] != want {
			t.Fatalf("decode(%q) = %+q, %v; want %+q twice", stream, got, err, want)
		}
	})
}
