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

func parseID(s string) (position, error) {
	e, q, ok := strings.Cut(s, "-")
	if !ok || e == "" || q == "" {
		return position{}, fmt.Errorf("%w %q: want the id of an event this gateway sent", errBadID, truncate(s, 64))
	}
	epoch, err1 := strconv.ParseUint(e, 36, 64)
	seq, err2 := strconv.ParseUint(q, 10, 64)
	if err1 != nil || err2 != nil || q[0] == '+' {
		return position{}, fmt.Errorf("%w %q: want the id of an event this gateway sent", errBadID, truncate(s, 64))
	}
	return position{epoch: epoch, seq: seq}, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
