package e2e

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// eventID is the id of an event as the gateway sends it: "<epoch>-<seq>", the stream's
// epoch in base 36 and the event's stream sequence in decimal.
type eventID struct {
	epoch string
	seq   uint64
}

// parseEventID parses an event id.
func parseEventID(s string) (eventID, error) {
	epoch, seqText, ok := strings.Cut(s, "-")
	seq, err := strconv.ParseUint(seqText, 10, 64)
	if !ok || epoch == "" || err != nil {
		return eventID{}, fmt.Errorf("event id %q: want <epoch>-<seq>", s)
	}
	return eventID{epoch: epoch, seq: seq}, nil
}

// formatID returns the id of the event seq of epoch.
func formatID(epoch string, seq uint64) string { return fmt.Sprintf("%s-%d", epoch, seq) }

// epochOf returns the epoch part of an event id, failing the test if it is not one.
func epochOf(tb testing.TB, id string) string {
	tb.Helper()
	e, err := parseEventID(id)
	if err != nil {
		tb.Fatal(err)
	}
	return e.epoch
}

// seqOf parses an event id of epoch and returns its sequence.
func seqOf(id, epoch string) (uint64, error) {
	e, err := parseEventID(id)
	if err != nil || e.epoch != epoch {
		return 0, fmt.Errorf("event id %q: not an id of epoch %s", id, epoch)
	}
	return e.seq, nil
}
