package sseformat

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// decodeAll reads events from r until Next fails and returns them with the
// error. It fails the test if the stream yields more events than its input
// could hold.
func decodeAll(tb testing.TB, d *Decoder, limit int) ([]Event, error) {
	tb.Helper()
	var events []Event
	for {
		ev, err := d.Next()
		if err != nil {
			return events, err
		}
		events = append(events, ev)
		if len(events) > limit {
			tb.Fatalf("more than %d events", limit)
		}
	}
}

// chunkReader returns its input in the given chunk sizes, cycling through
// them; a size of 0 is a (0, nil) read.
type chunkReader struct {
	data  []byte
	sizes []int
	i     int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := r.sizes[r.i%len(r.sizes)]
	r.i++
	n = min(n, len(p), len(r.data))
	copy(p, r.data[:n])
	r.data = r.data[n:]
	return n, nil
}

// splitReader returns data[:at] on the first read and the rest afterwards.
func splitReader(data string, at int) io.Reader {
	return io.MultiReader(strings.NewReader(data[:at]), strings.NewReader(data[at:]))
}

// readers returns named readers that deliver s in different pieces.
func readers(s string) map[string]func() io.Reader {
	m := map[string]func() io.Reader{
		"whole":    func() io.Reader { return strings.NewReader(s) },
		"one byte": func() io.Reader { return iotest.OneByteReader(strings.NewReader(s)) },
		"half":     func() io.Reader { return iotest.HalfReader(strings.NewReader(s)) },
		"data+EOF": func() io.Reader { return iotest.DataErrReader(strings.NewReader(s)) },
		"empty reads": func() io.Reader {
			return &chunkReader{data: []byte(s), sizes: []int{0, 3, 0, 0, 1, 7}}
		},
	}
	for at := 1; at < len(s); at++ {
		m[fmt.Sprintf("split at %d", at)] = func() io.Reader { return splitReader(s, at) }
	}
	return m
}

func TestDecoder(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		in        string
		want      []Event
		wantID    string        // LastEventID at the end
		wantRetry time.Duration // Retry at the end
	}{
		// Examples from WHATWG HTML §9.2.6.
		{name: "spec: multi-line data", in: "data: YHOO\ndata: +2\ndata: 10\n\n",
			want: []Event{{Data: "YHOO\n+2\n10"}}},
		{name: "spec: four blocks",
			in: ": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third event\n\n",
			want: []Event{
				{ID: "1", Data: "first event"},
				{Data: "second event"},
				{Data: " third event"},
			}},
		{name: "spec: four blocks, last one cut off",
			in: ": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third event\n",
			want: []Event{
				{ID: "1", Data: "first event"},
				{Data: "second event"},
			}},
		{name: "spec: empty data", in: "data\n\ndata\ndata\n\ndata:",
			want: []Event{{Data: ""}, {Data: "\n"}}},
		{name: "spec: space after colon is optional", in: "data:test\n\ndata: test\n\n",
			want: []Event{{Data: "test"}, {Data: "test"}}},
		{name: "spec: event types", in: "event: add\ndata: 73857293\n\nevent: remove\ndata: 2153\n\nevent: add\ndata: 113411\n\n",
			want: []Event{{Type: "add", Data: "73857293"}, {Type: "remove", Data: "2153"}, {Type: "add", Data: "113411"}}},

		// Line endings.
		{name: "LF", in: "data: a\ndata: b\n\n", want: []Event{{Data: "a\nb"}}},
		{name: "CRLF", in: "data: a\r\ndata: b\r\n\r\n", want: []Event{{Data: "a\nb"}}},
		{name: "CR", in: "data: a\rdata: b\r\r", want: []Event{{Data: "a\nb"}}},
		{name: "mixed", in: "data: a\rdata: b\r\ndata: c\n\r\n", want: []Event{{Data: "a\nb\nc"}}},
		{name: "LF CR is two line ends", in: "data: a\n\rdata: b\n\n", want: []Event{{Data: "a"}, {Data: "b"}}},
		{name: "CR CR LF", in: "data: a\r\r\ndata: b\n\n", want: []Event{{Data: "a"}, {Data: "b"}}},
		{name: "CR last byte", in: "data: a\r\r", want: []Event{{Data: "a"}}},
		{name: "CR last byte, one short", in: "data: a\r", want: nil},
		{name: "CR after dispatch then LF", in: "data: a\n\r\ndata: b\n\n", want: []Event{{Data: "a"}, {Data: "b"}}},

		// BOM.
		{name: "BOM stripped", in: "\xEF\xBB\xBFdata: x\n\n", want: []Event{{Data: "x"}}},
		{name: "BOM then blank line", in: "\xEF\xBB\xBF\ndata: x\n\n", want: []Event{{Data: "x"}}},
		{name: "second BOM kept", in: "\xEF\xBB\xBF\xEF\xBB\xBFdata: x\n\ndata: y\n\n", want: []Event{{Data: "y"}}},
		{name: "BOM not at start", in: "data: a\n\n\xEF\xBB\xBFdata: x\n\n", want: []Event{{Data: "a"}}},
		{name: "BOM in value kept", in: "data: \xEF\xBB\xBFx\n\n", want: []Event{{Data: "\xEF\xBB\xBFx"}}},
		{name: "partial BOM", in: "\xEF\xBBdata: x\n\ndata: y\n\n", want: []Event{{Data: "y"}}},

		// Comments and fields.
		{name: "comments only", in: ": hello\n:\n: world\n\n", want: nil},
		{name: "comment inside event", in: "data: a\n: note\ndata: b\n\n", want: []Event{{Data: "a\nb"}}},
		{name: "field without colon", in: "data\n\n", want: []Event{{Data: ""}}},
		{name: "event without colon resets type", in: "event: t\nevent\ndata: x\n\n", want: []Event{{Data: "x"}}},
		{name: "data without space", in: "data:x\n\n", want: []Event{{Data: "x"}}},
		{name: "two spaces keep one", in: "data:  x\n\n", want: []Event{{Data: " x"}}},
		{name: "tab is not stripped", in: "data:\tx\n\n", want: []Event{{Data: "\tx"}}},
		{name: "trailing spaces kept", in: "data: x  \n\n", want: []Event{{Data: "x  "}}},
		{name: "split at first colon", in: "data: a: b:c\n\n", want: []Event{{Data: "a: b:c"}}},
		{name: "unknown field ignored", in: "foo: bar\ndata: x\n\n", want: []Event{{Data: "x"}}},
		{name: "field names are case-sensitive", in: "Data: x\nDATA: y\ndata: z\n\n", want: []Event{{Data: "z"}}},
		{name: "space before colon", in: "data : x\ndata: y\n\n", want: []Event{{Data: "y"}}},
		{name: "empty data line", in: "data:\n\n", want: []Event{{Data: ""}}},
		{name: "data ending in empty line", in: "data: x\ndata:\n\n", want: []Event{{Data: "x\n"}}},
		{name: "no data field, no event", in: "event: t\nid: 1\n\n", wantID: "1"},
		{name: "NUL in data passes", in: "data: a\x00b\n\n", want: []Event{{Data: "a\x00b"}}},
		{name: "invalid UTF-8 passes", in: "event: \xff\ndata: \xc3(\n\n", want: []Event{{Type: "\xff", Data: "\xc3("}}},
		{name: "leading blank lines", in: "\n\n\r\n\rdata: x\n\n", want: []Event{{Data: "x"}}},

		// Event type.
		{name: "type reset after dispatch", in: "event: a\ndata: 1\n\ndata: 2\n\n",
			want: []Event{{Type: "a", Data: "1"}, {Data: "2"}}},
		{name: "type reset by empty block", in: "event: a\n\ndata: 1\n\n", want: []Event{{Data: "1"}}},
		{name: "last type wins", in: "event: a\nevent: b\ndata: 1\n\n", want: []Event{{Type: "b", Data: "1"}}},
		{name: "type with leading space", in: "event:  a\ndata: 1\n\n", want: []Event{{Type: " a", Data: "1"}}},

		// Ids.
		{name: "id persists across events", in: "id: 1\ndata: a\n\ndata: b\n\nid: 2\ndata: c\n\n",
			want: []Event{{ID: "1", Data: "a"}, {ID: "1", Data: "b"}, {ID: "2", Data: "c"}}, wantID: "2"},
		{name: "empty id clears", in: "id: 1\ndata: a\n\nid:\ndata: b\n\n",
			want: []Event{{ID: "1", Data: "a"}, {Data: "b"}}},
		{name: "id with NUL ignored", in: "id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n",
			want: []Event{{ID: "1", Data: "a"}, {ID: "1", Data: "b"}}, wantID: "1"},
		{name: "id after data in block", in: "data: a\nid: 7\n\n", want: []Event{{ID: "7", Data: "a"}}, wantID: "7"},
		{name: "id-only block sets id", in: "id: 5\n\ndata: a\n\n", want: []Event{{ID: "5", Data: "a"}}, wantID: "5"},
		{name: "id of cut-off event not committed", in: "id: 1\ndata: a\n\nid: 2\ndata: b\n",
			want: []Event{{ID: "1", Data: "a"}}, wantID: "1"},
		{name: "id keeps spaces but one", in: "id:  x \ndata: a\n\n", want: []Event{{ID: " x ", Data: "a"}}, wantID: " x "},

		// Retry.
		{name: "retry", in: "retry: 1500\ndata: a\n\ndata: b\n\n",
			want: []Event{{Data: "a", Retry: 1500 * time.Millisecond}, {Data: "b"}}, wantRetry: 1500 * time.Millisecond},
		{name: "retry without space", in: "retry:10\n\n", wantRetry: 10 * time.Millisecond},
		{name: "retry zero", in: "retry: 5\n\nretry: 0\n\n", wantRetry: 0},
		{name: "retry non-digits ignored", in: "retry: 5\n\nretry: 1a\n\nretry: -1\n\nretry:  7\n\nretry: 1.5\n\nretry: 7 \n\n",
			wantRetry: 5 * time.Millisecond},
		{name: "retry empty ignored", in: "retry: 5\n\nretry:\n\nretry\n\n", wantRetry: 5 * time.Millisecond},
		{name: "retry overflow ignored", in: "retry: 5\n\nretry: 99999999999999999999999\n\n", wantRetry: 5 * time.Millisecond},
		{name: "retry largest", in: "retry: 9223372036854\n\n", wantRetry: 9223372036854 * time.Millisecond},
		{name: "retry just too large", in: "retry: 9223372036855\n\n"},
		{name: "retry in block without data", in: "retry: 5\n\ndata: a\n\n", want: []Event{{Data: "a"}}, wantRetry: 5 * time.Millisecond},
		{name: "retry in cut-off block still applies", in: "retry: 5\ndata: a\n", wantRetry: 5 * time.Millisecond},
		{name: "unterminated retry line ignored", in: "retry: 5", wantRetry: 0},

		// End of input.
		{name: "empty input", in: ""},
		{name: "event without blank line discarded", in: "data: a\n\ndata: b\n", want: []Event{{Data: "a"}}},
		{name: "unterminated line discarded", in: "data: a\n\ndata: b", want: []Event{{Data: "a"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for rname, newReader := range readers(tt.in) {
				d := NewDecoder(newReader())
				got, err := decodeAll(t, d, len(tt.in))
				if err != io.EOF {
					t.Errorf("%s: error = %v, want io.EOF", rname, err)
				}
				if !slices.Equal(got, tt.want) {
					t.Errorf("%s: events\n got %+q\nwant %+q", rname, got, tt.want)
				}
				if id := d.LastEventID(); id != tt.wantID {
					t.Errorf("%s: LastEventID = %q, want %q", rname, id, tt.wantID)
				}
				if r := d.Retry(); r != tt.wantRetry {
					t.Errorf("%s: Retry = %v, want %v", rname, r, tt.wantRetry)
				}
				if _, err := d.Next(); err != io.EOF {
					t.Errorf("%s: Next after EOF = %v, want io.EOF", rname, err)
				}
			}
		})
	}
}

func TestDecoderTooLarge(t *testing.T) {
	t.Parallel()
	const limit = 16
	tests := []struct {
		name string
		in   string
		want []Event // events before the error
		ok   bool    // no error expected
	}{
		{name: "line at limit", in: "data: 0123456789\n\n", want: []Event{{Data: "0123456789"}}, ok: true},
		{name: "line over limit", in: "data: 01234567890\n\n"},
		{name: "unterminated line over limit", in: "data: 01234567890"},
		{name: "comment over limit", in: "data: a\n\n: 0123456789abcdef\n\n", want: []Event{{Data: "a"}}},
		{name: "CR-terminated line over limit", in: "data: 01234567890\r\r"},
		{name: "data at limit", in: "data: 01234567\ndata: 0123456\n\n", want: []Event{{Data: "01234567\n0123456"}}, ok: true},
		{name: "data over limit", in: "data: 01234567\ndata: 01234567\n\n"},
		{name: "many empty data lines", in: "data: a\n\n" + strings.Repeat("data\n", 18) + "\n", want: []Event{{Data: "a"}}},
		{name: "short lines after long event", in: "data: 0123456789\n\ndata: x\n\n",
			want: []Event{{Data: "0123456789"}, {Data: "x"}}, ok: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for rname, newReader := range readers(tt.in) {
				d := NewDecoder(newReader())
				d.SetMaxEventSize(limit)
				got, err := decodeAll(t, d, len(tt.in))
				if !slices.Equal(got, tt.want) {
					t.Errorf("%s: events\n got %+q\nwant %+q", rname, got, tt.want)
				}
				if tt.ok {
					if err != io.EOF {
						t.Errorf("%s: error = %v, want io.EOF", rname, err)
					}
					continue
				}
				if !errors.Is(err, ErrTooLarge) {
					t.Fatalf("%s: error = %v, want ErrTooLarge", rname, err)
				}
				if _, err2 := d.Next(); err2 != err {
					t.Errorf("%s: Next after failure = %v, want %v again", rname, err2, err)
				}
			}
		})
	}
}

func TestDecoderDefaultMaxEventSize(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("x", DefaultMaxEventSize-len("data: "))
	in := "data: " + big + "\n\n" + "data: " + big + "x\n\n"
	d := NewDecoder(strings.NewReader(in))
	ev, err := d.Next()
	if err != nil || ev.Data != big {
		t.Fatalf("Next = %d bytes, %v; want %d bytes", len(ev.Data), err, len(big))
	}
	if _, err := d.Next(); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Next = %v, want ErrTooLarge", err)
	}
	want := "sseformat: event too large: line longer than 1048576 bytes"
	if _, err := d.Next(); err == nil || err.Error() != want {
		t.Errorf("error = %v, want %q", err, want)
	}

	d = NewDecoder(strings.NewReader(in))
	d.SetMaxEventSize(0) // restores the default
	if _, err := d.Next(); err != nil {
		t.Fatalf("Next = %v", err)
	}
}

func TestDecoderEncodedLenFits(t *testing.T) {
	t.Parallel()
	events := []Event{
		{ID: "12", Type: "t", Data: "a\nbb\nccc", Retry: time.Second},
		{Data: strings.Repeat("x", 100)},
		{Data: strings.Repeat("\n", 100)},
	}
	for _, e := range events {
		enc := AppendEvent(nil, e)
		d := NewDecoder(bytes.NewReader(enc))
		d.SetMaxEventSize(EncodedLen(e))
		if _, err := d.Next(); err != nil {
			t.Errorf("event of EncodedLen %d with max %d: %v", EncodedLen(e), EncodedLen(e), err)
		}
	}
}

func TestDecoderReadError(t *testing.T) {
	t.Parallel()
	errBoom := errors.New("boom")
	in := "data: a\n\ndata: b\n\ndata: c\n"
	d := NewDecoder(io.MultiReader(strings.NewReader(in), iotest.ErrReader(errBoom)))
	got, err := decodeAll(t, d, 10)
	if err != errBoom {
		t.Errorf("error = %v, want %v as is", err, errBoom)
	}
	if want := []Event{{Data: "a"}, {Data: "b"}}; !slices.Equal(got, want) {
		t.Errorf("events = %+q, want %+q", got, want)
	}
	if _, err := d.Next(); err != errBoom {
		t.Errorf("Next after error = %v, want %v", err, errBoom)
	}

	// An error returned together with the last bytes.
	d = NewDecoder(iotest.TimeoutReader(iotest.OneByteReader(strings.NewReader("data: a\n\n"))))
	if _, err := d.Next(); err != iotest.ErrTimeout {
		t.Errorf("Next = %v, want %v", err, iotest.ErrTimeout)
	}
}

type zeroReader struct{}

func (zeroReader) Read([]byte) (int, error) { return 0, nil }

type badReader struct{}

func (badReader) Read(p []byte) (int, error) { return len(p) + 1, nil }

func TestDecoderBrokenReaders(t *testing.T) {
	t.Parallel()
	if _, err := NewDecoder(zeroReader{}).Next(); err != io.ErrNoProgress {
		t.Errorf("reader without progress: %v, want io.ErrNoProgress", err)
	}
	if _, err := NewDecoder(badReader{}).Next(); err == nil {
		t.Errorf("reader with invalid count: no error")
	}
}

// TestDecoderNoReadAhead checks that Next returns an event as soon as its
// blank line has arrived, even when the line ends in CR and the next byte
// (which might be the LF of a CRLF) has not.
func TestDecoderNoReadAhead(t *testing.T) {
	t.Parallel()
	pr, pw := io.Pipe()
	t.Cleanup(func() { pr.Close() })
	d := NewDecoder(pr)
	chunks := []struct {
		write string
		want  Event
	}{
		{"data: a\n\n", Event{Data: "a"}},
		{"data: b\r\r", Event{Data: "b"}},
		{"\ndata: c\r\n\r", Event{Data: "c"}}, // the LF ends the previous blank line
		{"\ndata: d\r\n\r\n", Event{Data: "d"}},
	}
	// The writer sends a chunk only once the previous one has been decoded:
	// a Next that waited for more input than its event needs would block.
	decoded := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		for _, c := range chunks {
			if _, err := io.WriteString(pw, c.write); err != nil {
				errc <- err
				return
			}
			<-decoded
		}
		errc <- pw.Close()
	}()
	for _, c := range chunks {
		type result struct {
			ev  Event
			err error
		}
		res := make(chan result, 1)
		go func() {
			ev, err := d.Next()
			res <- result{ev, err}
		}()
		select {
		case r := <-res:
			if r.err != nil || r.ev != c.want {
				t.Fatalf("Next = %+q, %v; want %+q", r.ev, r.err, c.want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("Next blocked after %q was written", c.write)
		}
		decoded <- struct{}{}
	}
	if _, err := d.Next(); err != io.EOF {
		t.Errorf("Next at end = %v, want io.EOF", err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

func TestDecoderComments(t *testing.T) {
	t.Parallel()
	var comments []string
	in := string(AppendComment(nil, "ping")) + ":\n:nospace\n:  two\n" +
		string(AppendComment(nil, "a\nb")) + "data: x\n: inside\n\n"
	d := NewDecoder(strings.NewReader(in))
	d.OnComment(func(text string) { comments = append(comments, text) })
	ev, err := d.Next()
	if err != nil || ev != (Event{Data: "x"}) {
		t.Fatalf("Next = %+q, %v", ev, err)
	}
	want := []string{"ping", "", "nospace", " two", "a", "b", "inside"}
	if !slices.Equal(comments, want) {
		t.Errorf("comments = %q, want %q", comments, want)
	}
}

// TestDecoderLinearTime feeds inputs that a decoder re-scanning its buffer
// would take quadratic time on; the test would time out.
func TestDecoderLinearTime(t *testing.T) {
	t.Parallel()
	const n = 1 << 20
	tests := map[string]func() io.Reader{
		"long line, one byte reads": func() io.Reader {
			return iotest.OneByteReader(strings.NewReader("data: " + strings.Repeat("x", n) + "\n\n"))
		},
		"many CRs, far LF": func() io.Reader {
			return strings.NewReader("data: " + strings.Repeat("x", n) + "\n\n" + strings.Repeat("\r", n) + "data: x\n\n")
		},
		"many LFs, far CR": func() io.Reader {
			return strings.NewReader("data: " + strings.Repeat("x", n) + "\n\n" + strings.Repeat("\n", n) + "data: x\r\r")
		},
	}
	for name, newReader := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			d := NewDecoder(newReader())
			d.SetMaxEventSize(2 * n)
			start := time.Now()
			if _, err := decodeAll(t, d, 3); err != io.EOF {
				t.Fatalf("error = %v", err)
			}
			if elapsed := time.Since(start); elapsed > 10*time.Second {
				t.Errorf("took %v", elapsed)
			}
		})
	}
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	events := []Event{
		{},
		{Data: "hello"},
		{ID: "1", Type: "t", Data: "multi\nline\n\ndata\n", Retry: 2 * time.Second},
		{ID: "ü:1", Type: " spaced ", Data: " leading and trailing "},
		{Type: "message", Data: "\n"},
		{ID: "x", Data: "emoji 🎉\x00nul"},
		{Data: ":not a comment\n: neither"},
		{Data: "\xEF\xBB\xBFbom"},
	}
	var stream []byte
	for _, e := range events {
		if err := e.Validate(); err != nil {
			t.Fatalf("test event %+q: %v", e, err)
		}
		enc := AppendEvent(nil, e)
		got, err := decodeAll(t, NewDecoder(bytes.NewReader(enc)), 1)
		if err != io.EOF || len(got) != 1 || got[0] != e {
			t.Errorf("round trip of %+q: %+q, %v", e, got, err)
		}
		stream = AppendComment(stream, "between")
		stream = append(stream, enc...)
	}
	// Concatenated, the ids persist from one event to the next.
	got, err := decodeAll(t, NewDecoder(iotest.OneByteReader(bytes.NewReader(stream))), len(events))
	if err != io.EOF {
		t.Fatalf("error = %v", err)
	}
	want := slices.Clone(events)
	id := ""
	for i := range want {
		if want[i].ID == "" {
			want[i].ID = id
		}
		id = want[i].ID
	}
	if !slices.Equal(got, want) {
		t.Errorf("concatenated:\n got %+q\nwant %+q", got, want)
	}
}

func TestDecoderAllocs(t *testing.T) {
	stream := bytes.Repeat([]byte("id: 17\nevent: update\ndata: hello\n\n"), 1000)
	r := bytes.NewReader(stream)
	d := NewDecoder(r)
	if _, err := d.Next(); err != nil { // warm up: buffers, type and id strings
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(500, func() {
		if _, err := d.Next(); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 1 {
		t.Errorf("Next: %v allocs per event, want at most 1 (the data string)", allocs)
	}
}

func BenchmarkDecoder(b *testing.B) {
	e := Event{ID: "01J9Z3K4M5N6P7Q8R9S0T1V2W3", Type: "order.updated", Data: strings.Repeat("x", 1024)}
	const perStream = 1000
	var stream []byte
	for range perStream {
		stream = AppendEvent(stream, e)
	}
	r := bytes.NewReader(stream)
	d := NewDecoder(r)
	b.SetBytes(int64(EncodedLen(e)))
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if n == perStream {
			r.Reset(stream)
			d = NewDecoder(r)
			n = 0
		}
		if _, err := d.Next(); err != nil {
			b.Fatal(err)
		}
		n++
	}
}

func BenchmarkDecoderSmallEvents(b *testing.B) {
	stream := bytes.Repeat([]byte("id: 17\nevent: update\ndata: {\"n\":1}\n\n: ping\n\n"), 1000)
	r := bytes.NewReader(stream)
	d := NewDecoder(r)
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if n == 1000 {
			r.Reset(stream)
			d = NewDecoder(r)
			n = 0
		}
		if _, err := d.Next(); err != nil {
			b.Fatal(err)
		}
		n++
	}
}
