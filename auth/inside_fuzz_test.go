package auth

import (
	"strings"
	"testing"

	"github.com/natsse/natsse/natsbus"
)

// insideTokens are the tokens of fuzzed filters; topics also use "z", which no filter
// names, to stand for every other token.
var insideTokens = []string{"a", "b", "*", ">"}

// decodeFilter turns bytes into a filter, two bits a token.
func decodeFilter(data []byte) string {
	toks := make([]string, 0, len(data))
	for _, b := range data {
		toks = append(toks, insideTokens[int(b)%len(insideTokens)])
	}
	return strings.Join(toks, ".")
}

// topicsUpTo returns every topic of 1 to n tokens from a, b and z.
func topicsUpTo(n int) []string {
	var out, level []string
	level = []string{""}
	for l := 1; l <= n; l++ {
		var next []string
		for _, p := range level {
			for _, t := range []string{"a", "b", "z"} {
				if p == "" {
					next = append(next, t)
				} else {
					next = append(next, p+"."+t)
				}
			}
		}
		out, level = append(out, next...), next
	}
	return out
}

// insideByEnumeration says whether every topic f matches, g matches too, trying every
// topic one token longer than either filter.
func insideByEnumeration(f, g string) bool {
	n := max(strings.Count(f, "."), strings.Count(g, ".")) + 2
	for _, topic := range topicsUpTo(n) {
		// natsbus.Covers on a literal topic is plain matching, written apart from NATS's.
		if natsbus.Covers(f, topic) && !natsbus.Covers(g, topic) {
			return false
		}
	}
	return true
}

// FuzzInside holds the grant check (NATS's subset rule) to the brute-force oracle.
func FuzzInside(f *testing.F) {
	for _, seed := range [][2][]byte{
		{{0, 1}, {0, 3}}, {{0, 3}, {0, 2}}, {{2, 1}, {0, 2}}, {{0, 2, 1}, {0, 3}}, {{3}, {2}}, {{2, 2}, {3}},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, fb, gb []byte) {
		if len(fb) == 0 || len(gb) == 0 || len(fb) > 5 || len(gb) > 5 {
			return
		}
		filter, grant := decodeFilter(fb), decodeFilter(gb)
		if natsbus.ValidateFilter(filter) != nil || natsbus.ValidateFilter(grant) != nil {
			return
		}
		g := &Grants{Subscribe: []string{grant}}
		if got, want := g.CanSubscribe(filter), insideByEnumeration(filter, grant); got != want {
			t.Fatalf("%q inside %q: %v, want %v", filter, grant, got, want)
		}
	})
}

func TestInside(t *testing.T) {
	t.Parallel()
	g := &Grants{Subscribe: []string{"orders.>", "users.42.*"}, Publish: []string{"orders.created", "audit.*"}}
	for filter, want := range map[string]bool{
		"orders.eu": true, "orders.*": true, "orders.>": true, "orders": false, "*.created": false,
		"users.42.x": true, "users.42.*": true, "users.42.>": false, "users.43.x": false, ">": false,
	} {
		if got := g.CanSubscribe(filter); got != want {
			t.Errorf("CanSubscribe(%q) = %v, want %v", filter, got, want)
		}
	}
	for topic, want := range map[string]bool{"orders.created": true, "orders.deleted": false, "audit.x": true, "audit": false} {
		if got := g.CanPublish(topic); got != want {
			t.Errorf("CanPublish(%q) = %v, want %v", topic, got, want)
		}
	}
}
