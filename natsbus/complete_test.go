package natsbus

import (
	"testing"
)

// TestMissedAfter asks a replicated stream's leader what follows a sequence on some
// subjects, within a bound.
func TestMissedAfter(t *testing.T) {
	t.Parallel()
	buses := newTestCluster(t)
	b := buses[1]
	if !b.replicated() {
		t.Fatal("a stream of three replicas is not replicated")
	}
	a1 := publish(t, b, "a", "", "a1")
	b1 := publish(t, b, "b.x", "", "b1")
	a2 := publish(t, b, "a", "", "a2")
	last := publish(t, b, "c", "", "c1")
	for _, tc := range []struct {
		name    string
		filters []string
		after   uint64
		upTo    uint64
		want    uint64
	}{
		{"first of a", []string{"a"}, 0, last, a1},
		{"next of a", []string{"a"}, a1, last, a2},
		{"none after the last a", []string{"a"}, a2, last, 0},
		{"beyond the bound", []string{"a"}, a1, a2 - 1, 0},
		{"the nearest of two filters", []string{"a", "b.>"}, a1, last, b1},
		{"a wildcard", []string{">"}, b1, last, a2},
		{"no such topic", []string{"zz"}, 0, last, 0},
	} {
		got, err := b.missedAfter(t.Context(), b.subjects(tc.filters), tc.after, tc.upTo)
		if err != nil || got != tc.want {
			t.Errorf("%s: missedAfter(%v, %d, %d) = %d, %v; want %d", tc.name, tc.filters, tc.after, tc.upTo, got, err, tc.want)
		}
	}
}
