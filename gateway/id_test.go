package gateway

import "testing"

// TestParseID: the ids the gateway issues read back as their position, and nothing else
// does, not even another spelling of one of them.
func TestParseID(t *testing.T) {
	t.Parallel()
	for _, p := range []position{
		{0, 0}, {1, 1}, {1<<64 - 1, 1<<64 - 1}, {1763731200000000000, 42},
		{1763731200000000000, 0}, // a gap notice's resume_id when the stream is empty
		{1795267448464067148, 1}, // "dn0x748fle8c-1"
	} {
		got, err := parseID(p.String())
		if err != nil || got != p {
			t.Errorf("parseID(%q) = %v, %v", p.String(), got, err)
		}
		if len(p.String()) > maxIDLen {
			t.Errorf("%q longer than maxIDLen", p.String())
		}
	}
	// The README's example id, as the gateway issues it, and other spellings of it.
	if id := (position{epoch: 1795267448464067148, seq: 1}).String(); id != "dn0x748fle8c-1" {
		t.Fatalf("epoch 1795267448464067148 gives the id %q", id)
	}
	for _, bad := range []string{
		"", "-", "1-", "-1", "x", "1-x", "1-+2", "1--2", "1-2-3", " 1-2", "1-2 ",
		"zzzzzzzzzzzzzzzz-1", "1-99999999999999999999999",
		"DN0X748FLE8C-1",    // upper case
		"Dn0x748fle8c-1",    // partly
		"dn0x748fle8c-0001", // leading zeros in the sequence
		"0dn0x748fle8c-1",   // in the epoch
		"00-0", "0-00", "+1-2", "1-\uff11", "dn0x748fle8c-1\x00",
	} {
		if _, err := parseID(bad); err == nil {
			t.Errorf("parseID(%q) accepted", bad)
		}
	}
}
