package sseformat

import (
	"strings"
	"testing"
	"time"
)

func TestAppendEvent(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		ev   Event
		want string
	}{
		{"data only", Event{Data: "hello"}, "data: hello\n\n"},
		{"empty data", Event{}, "data: \n\n"},
		{"all fields in order", Event{ID: "42", Type: "update", Data: "x", Retry: 3 * time.Second},
			"id: 42\nevent: update\nretry: 3000\ndata: x\n\n"},
		{"id without type", Event{ID: "a-1", Data: "x"}, "id: a-1\ndata: x\n\n"},
		{"type without id", Event{Type: "ping", Data: "x"}, "event: ping\ndata: x\n\n"},
		{"multi-line LF", Event{Data: "a\nb\nc"}, "data: a\ndata: b\ndata: c\n\n"},
		{"CRLF", Event{Data: "a\r\nb"}, "data: a\ndata: b\n\n"},
		{"lone CR", Event{Data: "a\rb"}, "data: a\ndata: b\n\n"},
		{"CR then CRLF", Event{Data: "a\r\r\nb"}, "data: a\ndata: \ndata: b\n\n"},
		{"LF then CR", Event{Data: "a\n\rb"}, "data: a\ndata: \ndata: b\n\n"},
		{"mixed breaks", Event{Data: "1\r2\n3\r\n4"}, "data: 1\ndata: 2\ndata: 3\ndata: 4\n\n"},
		{"trailing LF", Event{Data: "x\n"}, "data: x\ndata: \n\n"},
		{"trailing CRLF", Event{Data: "x\r\n"}, "data: x\ndata: \n\n"},
		{"trailing CR", Event{Data: "x\r"}, "data: x\ndata: \n\n"},
		{"only a line break", Event{Data: "\n"}, "data: \ndata: \n\n"},
		{"blank lines inside", Event{Data: "a\n\nb"}, "data: a\ndata: \ndata: b\n\n"},
		{"leading space kept by the single space", Event{Data: " x"}, "data:  x\n\n"},
		{"leading space in type", Event{Type: " t", Data: "x"}, "event:  t\ndata: x\n\n"},
		{"colon in data", Event{Data: "a: b"}, "data: a: b\n\n"},
		{"unicode and emoji", Event{ID: "é", Type: "ünï", Data: "日本語 🎉\n👍🏽"},
			"id: é\nevent: ünï\ndata: 日本語 🎉\ndata: 👍🏽\n\n"},
		{"retry rounded down", Event{Data: "x", Retry: 1500*time.Microsecond + 999}, "retry: 1\ndata: x\n\n"},
		{"retry below 1ms is 1ms", Event{Data: "x", Retry: time.Nanosecond}, "retry: 1\ndata: x\n\n"},
		{"zero retry not written", Event{Data: "x"}, "data: x\n\n"},
		{"negative retry not written", Event{Data: "x", Retry: -time.Second}, "data: x\n\n"},
		{"large retry", Event{Data: "x", Retry: time.Duration(1<<63 - 1)}, "retry: 9223372036854\ndata: x\n\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := string(AppendEvent(nil, tt.ev))
			if got != tt.want {
				t.Errorf("AppendEvent(%+q) = %q, want %q", tt.ev, got, tt.want)
			}
			if n := EncodedLen(tt.ev); n != len(tt.want) {
				t.Errorf("EncodedLen(%+q) = %d, want %d", tt.ev, n, len(tt.want))
			}
			prefix := []byte("keep:")
			if got := string(AppendEvent(prefix, tt.ev)); got != "keep:"+tt.want {
				t.Errorf("AppendEvent with prefix = %q, want %q", got, "keep:"+tt.want)
			}
		})
	}
}

func TestAppendEventNoAllocs(t *testing.T) {
	e := Event{ID: "1234", Type: "update", Data: strings.Repeat("line\n", 20), Retry: time.Second}
	buf := make([]byte, 0, EncodedLen(e))
	allocs := testing.AllocsPerRun(100, func() {
		buf = AppendEvent(buf[:0], e)
	})
	if allocs != 0 {
		t.Errorf("AppendEvent into a large enough buffer: %v allocs, want 0", allocs)
	}
	// A buffer of exactly EncodedLen bytes is used as is.
	for _, e := range []Event{{Data: "x"}, {ID: "1", Type: "t", Retry: time.Second, Data: "single line"}, e} {
		exact := make([]byte, 0, EncodedLen(e))
		if got := AppendEvent(exact, e); &got[:1][0] != &exact[:1][0] {
			t.Errorf("AppendEvent(%+q) reallocated a buffer of EncodedLen bytes", e)
		}
	}
	allocs = testing.AllocsPerRun(100, func() {
		_ = EncodedLen(e)
	})
	if allocs != 0 {
		t.Errorf("EncodedLen: %v allocs, want 0", allocs)
	}
}

func TestAppendComment(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, text, want string
	}{
		{"empty", "", ":\n"},
		{"ping", "ping", ": ping\n"},
		{"multi-line", "a\nb", ": a\n: b\n"},
		{"CRLF and CR", "a\r\nb\rc", ": a\n: b\n: c\n"},
		{"empty lines", "a\n\nb", ": a\n:\n: b\n"},
		{"trailing break", "a\n", ": a\n:\n"},
		{"leading space", " x", ":  x\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := string(AppendComment(nil, tt.text)); got != tt.want {
				t.Errorf("AppendComment(%q) = %q, want %q", tt.text, got, tt.want)
			}
		})
	}
}

func TestAppendRetry(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		d    time.Duration
		want string
	}{
		{"seconds", 3 * time.Second, "retry: 3000\n"},
		{"milliseconds", 1500 * time.Millisecond, "retry: 1500\n"},
		{"rounded down", 2999 * time.Microsecond, "retry: 2\n"},
		{"sub-millisecond", 10 * time.Microsecond, "retry: 1\n"},
		{"zero", 0, "retry: 1\n"},
		{"negative", -time.Second, "retry: 1\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := string(AppendRetry(nil, tt.d)); got != tt.want {
				t.Errorf("AppendRetry(%v) = %q, want %q", tt.d, got, tt.want)
			}
		})
	}
}

func TestLineSplitterLinear(t *testing.T) {
	t.Parallel()
	// Many line breaks of one kind with the other kind only at the end: a
	// splitter that searched for the far one at every line would be quadratic.
	tests := []struct {
		s     string
		lines int
	}{
		{strings.Repeat("\r", 1<<20) + "\n", 1<<20 + 1},
		{strings.Repeat("\n", 1<<20) + "\r", 1<<20 + 2},
		{strings.Repeat("a\r", 1<<19) + "\n", 1<<19 + 1},
	}
	for _, tt := range tests {
		got := AppendComment(nil, tt.s)
		if n := strings.Count(string(got), "\n"); n != tt.lines {
			t.Errorf("got %d lines, want %d", n, tt.lines)
		}
	}
}

func BenchmarkAppendEvent(b *testing.B) {
	e := Event{
		ID:   "01J9Z3K4M5N6P7Q8R9S0T1V2W3",
		Type: "order.updated",
		Data: strings.Repeat(`{"k":"v","n":1234567890}`, 43)[:1024], // 1 KiB of JSON-like text
	}
	buf := make([]byte, 0, EncodedLen(e))
	b.SetBytes(int64(EncodedLen(e)))
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendEvent(buf[:0], e)
	}
}

func BenchmarkAppendEventMultiLine(b *testing.B) {
	e := Event{ID: "7", Data: strings.Repeat(strings.Repeat("x", 63)+"\n", 16)}
	buf := make([]byte, 0, EncodedLen(e))
	b.SetBytes(int64(EncodedLen(e)))
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendEvent(buf[:0], e)
	}
}

func BenchmarkEncodedLen(b *testing.B) {
	e := Event{ID: "7", Data: strings.Repeat("x", 1024)}
	b.ReportAllocs()
	for b.Loop() {
		_ = EncodedLen(e)
	}
}
