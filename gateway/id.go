package gateway

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// errBadID reports an event id that the gateway did not issue.
var errBadID = errors.New("invalid event id")

// maxIDLen is the longest SSE id the gateway issues: a base-36 epoch and a decimal sequence.
const maxIDLen = 13 + 1 + 20

// position is a place in one incarnation (epoch) of the stream: the sequence of the last
// event seen. Its text form, the SSE id, is "<epoch in base 36>-<sequence>".
type position struct {
	epoch uint64
	seq   uint64
}

func appendID(dst []byte, p position) []byte {
	dst = strconv.AppendUint(dst, p.epoch, 36)
	dst = append(dst, '-')
	return strconv.AppendUint(dst, p.seq, 10)
}

func (p position) String() string { return string(appendID(nil, p)) }

// parseID reads an id the gateway issued: exactly what appendID writes, so that one
// position has one id. Any other spelling of it (upper case, leading zeros, a sign) is not
// an id the gateway sent, and is refused.
func parseID(s string) (position, error) {
	bad := func() (position, error) {
		return position{}, fmt.Errorf("%w %q: want the id of an event this gateway sent", errBadID, truncate(s, 64))
	}
	e, q, ok := strings.Cut(s, "-")
	if !ok || len(s) > maxIDLen {
		return bad()
	}
	epoch, err1 := strconv.ParseUint(e, 36, 64)
	seq, err2 := strconv.ParseUint(q, 10, 64)
	if err1 != nil || err2 != nil {
		return bad()
	}
	p := position{epoch: epoch, seq: seq}
	var canonical [maxIDLen]byte
	if string(appendID(canonical[:0], p)) != s {
		return bad()
	}
	return p, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
