package gateway

import (
	"net/url"
	"sort"
	"strings"
)

// checkParams refuses a query parameter that is not one of known but looks like a typo of
// one ("topics", "Topic", "last-event-id"), so that a mistake is not silently ignored.
// Other unknown parameters (cache busters and the like) are allowed.
func checkParams(q url.Values, known ...string) error {
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if contains(known, k) {
			continue
		}
		for _, want := range known {
			if looksLike(k, want) {
				return wrapf(errBadRequest, "unknown query parameter %q: did you mean %q?", truncate(k, 64), want)
			}
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func looksLike(got, want string) bool {
	norm := func(s string) string {
		return strings.NewReplacer("-", "_", " ", "_").Replace(strings.ToLower(s))
	}
	g, w := norm(got), norm(want)
	if g == w {
		return true
	}
	return len(g) > 2 && editDistance(g, w, 2) <= 2
}

// editDistance is the Levenshtein distance of a and b, or max+1 when it exceeds max.
func editDistance(a, b string, max int) int {
	if d := len(a) - len(b); d > max || -d > max {
		return max + 1
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
