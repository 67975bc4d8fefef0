package gateway

import (
	"bytes"
	"strings"
	"testing"

	"github.com/natsse/natsse/natsbus"
	"github.com/natsse/natsse/sseformat"
)

// FuzzAppendStored checks that a replay writes each event exactly as the live path does:
// appendStored, after whatever is already in the batch, appends the bytes of the frame
// newEvent builds, plain or enveloped, and both sanitize alike; and that the frame
// decodes to the event's id.
func FuzzAppendStored(f *testing.F) {
	for _, seed := range []struct {
		typ, data string
		seq       uint64
	}{
		{"", "hello", 1},
		{"created", "two\nlines", 42},
		{"", "", 7},
		{"x", "ends with a newline\n", 1 << 40},
		{"bad\r\ntype", "cr\rlf\r\n", 3},
		{GapEventType, "reserved type", 4},
		{"", "invalid \xff utf-8", 5},
		{"\xfe", "<html> & \"quotes\"", 6},
		{"", strings.Repeat("long ", 20000), 9},
	} {
		f.Add(seed.typ, []byte(seed.data), seed.seq)
	}
	f.Fuzz(func(t *testing.T, typ string, data []byte, seq uint64) {
		m := natsbus.Message{Seq: seq, Topic: "a.b", Type: typ, Data: data}
		ev, sanitized := newEvent(epochOne(), m)
		for _, envelope := range []bool{false, true} {
			prefix := []byte("earlier frames\n\n")
			got, gotSanitized := appendStored(bytes.Clone(prefix), epochOne(), m, envelope)
			if !bytes.Equal(got[:len(prefix)], prefix) || !bytes.Equal(got[len(prefix):], ev.frameFor(envelope)) {
				t.Fatalf("envelope=%v: appendStored wrote\n%q\nnewEvent encoded\n%q", envelope, got[len(prefix):], ev.frameFor(envelope))
			}
			if gotSanitized != sanitized {
				t.Fatalf("appendStored sanitized=%v, newEvent %v", gotSanitized, sanitized)
			}
			dec := sseformat.NewDecoder(bytes.NewReader(got[len(prefix):]))
			dec.SetMaxEventSize(len(got))
			if out, err := dec.Next(); err != nil || out.ID != (position{epoch: epochOne(), seq: seq}).String() {
				t.Fatalf("decoded %+v, %v", out, err)
			}
		}
	})
}
