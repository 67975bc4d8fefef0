package gateway

import (
	"math/big"
	"strings"
	"unicode"
	"unicode/utf8"
)

// What the fuzzers expect of request input, transcribed from README rather than taken from
// the gateway's own validators. Where README leaves room (which printable characters a
// topic may hold), the verdict is "either": only plain cases are held to an answer.

// issuedID reports whether s has the form of the ids the gateway issues: the epoch in
// base 36, a dash, the sequence in decimal; lower case, no leading zeros, no sign, each
// number at most 2^64-1.
func issuedID(s string) bool {
	e, q, ok := strings.Cut(s, "-")
	return ok && canonicalNumber(e, 36) && canonicalNumber(q, 10)
}

func canonicalNumber(s string, base int) bool {
	const digits = "0123456789abcdefghijklmnopqrstuvwxyz"
	if s == "" || (len(s) > 1 && s[0] == '0') {
		return false
	}
	for _, r := range s {
		if !strings.ContainsRune(digits[:base], r) {
			return false
		}
	}
	n, ok := new(big.Int).SetString(s, base)
	return ok && n.BitLen() <= 64
}

// topicVerdict judges a topic (a filter when filter is set) by README: dot-separated
// tokens of printable characters without spaces, at most 256 bytes; in a filter, "*" is a
// whole token and ">" the whole last one. valid: plainly valid (tokens of letters, digits,
// '_' and '-', and whole-token wildcards); invalid: plainly not. Neither: README leaves it
// to the gateway.
func topicVerdict(t string, filter bool) (valid, invalid bool) {
	if t == "" || len(t) > 256 || !utf8.ValidString(t) {
		return false, true
	}
	plain := true
	tokens := strings.Split(t, ".")
	for i, tok := range tokens {
		if tok == "" {
			return false, true
		}
		if filter && (tok == "*" || (tok == ">" && i == len(tokens)-1)) {
			continue
		}
		for _, r := range tok {
			switch {
			case unicode.IsSpace(r) || unicode.IsControl(r) || r == '*' || r == '>':
				return false, true
			case r > unicode.MaxASCII || !(r == '_' || r == '-' || unicode.IsLetter(r) || unicode.IsDigit(r)):
				plain = false
			}
		}
	}
	return plain, false
}

// eventTypeValid reports whether README allows t as a published event type: no CR, LF or
// NUL, no leading or trailing space or tab, valid UTF-8, not one of the reserved types.
func eventTypeValid(t string) bool {
	return !strings.ContainsAny(t, "\r\n\x00") && strings.Trim(t, " \t") == t && utf8.ValidString(t) &&
		t != "gap" && t != "token_expired"
}

// idempotencyKeyValid reports whether README allows k as an Idempotency-Key: at most
// 256 bytes, on one line.
func idempotencyKeyValid(k string) bool {
	return len(k) <= 256 && !strings.ContainsAny(k, "\r\n")
}

// encodedSize is the size of the SSE event with an id of idLen bytes, type typ and data,
// as README counts it: its id:, event: and data: lines and the blank line that ends it,
// each line of data costing 7 bytes of framing ("data: " and its line break). A CR, LF or
// CRLF in the data starts a new line.
func encodedSize(idLen int, typ, data string) int {
	n := len("id: \n") + idLen + 1
	if typ != "" {
		n += len("event: \n") + len(typ)
	}
	lines := strings.Split(strings.ReplaceAll(strings.ReplaceAll(data, "\r\n", "\n"), "\r", "\n"), "\n")
	for _, l := range lines {
		n += 7 + len(l)
	}
	return n
}

// Generated input: valid topics and filters, made of bytes, and ways to spoil them.

// genAlphabet is what generated tokens are made of: plain characters and other printable
// ones, one and more bytes long.
var genAlphabet = []string{"a", "b", "Z", "0", "9", "_", "-", "/", ":", "~", "é", "日", "🙂"}

// genTopic makes a valid topic (a filter when filter is set) of data: each byte adds a
// character to the current token, or (high bits) starts a new token, or in a filter adds
// a "*" token. The result is cut to 256 bytes at a token's end.
func genTopic(data []byte, filter bool) string {
	var b strings.Builder
	tok := 0 // bytes in the current token
	add := func(s string) {
		if b.Len()+len(s) <= 256 {
			b.WriteString(s)
			tok += len(s)
		}
	}
	for _, c := range data {
		switch {
		case c >= 0xf0 && tok > 0 && b.Len() < 255:
			b.WriteByte('.')
			tok = 0
		case filter && c >= 0xe0 && tok == 0 && b.Len() < 256:
			add("*")
			if b.Len() < 255 {
				b.WriteByte('.')
				tok = 0
			}
		default:
			add(genAlphabet[int(c)%len(genAlphabet)])
		}
	}
	s := strings.TrimSuffix(b.String(), ".")
	if s == "" {
		return "a"
	}
	if filter && len(data) > 0 && data[0]&1 == 1 && len(s) <= 254 {
		s += ".>"
	}
	return s
}

// spoilTopic makes topic invalid in one of the ways README rules out, chosen by how.
func spoilTopic(topic string, how byte) string {
	switch how % 8 {
	case 0:
		return topic + "." // an empty token
	case 1:
		return "." + topic
	case 2:
		return strings.Replace(topic, ".", "..", 1) + "..x"
	case 3:
		return topic + " x" // a space
	case 4:
		return topic + "\tx" // a control character
	case 5:
		return topic + "x*" // a wildcard within a token
	case 6:
		return topic + strings.Repeat("x", 257-len(topic)) // one byte too long
	default:
		return topic + "\xff" // not UTF-8
	}
}
