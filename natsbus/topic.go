package natsbus

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxTopicLen is the longest topic accepted, in bytes.
const MaxTopicLen = 256

// ErrInvalidTopic reports a topic that cannot name a subject (or a filter of subjects).
var ErrInvalidTopic = errors.New("natsbus: invalid topic")

// ValidateTopic checks a topic to publish on: dot-separated tokens, none empty, no white
// space or control characters, no wildcards.
func ValidateTopic(topic string) error { return validateTopic(topic, false) }

// ValidateFilter checks a topic filter to subscribe with: like ValidateTopic, but a token
// may be "*" (exactly one token) and the last token may be ">" (one or more tokens).
func ValidateFilter(filter string) error { return validateTopic(filter, true) }

func validateTopic(t string, wildcards bool) error {
	switch {
	case t == "":
		return fmt.Errorf("%w: empty", ErrInvalidTopic)
	case len(t) > MaxTopicLen:
		return fmt.Errorf("%w: longer than %d bytes", ErrInvalidTopic, MaxTopicLen)
	case !utf8.ValidString(t):
		return fmt.Errorf("%w %q: not valid UTF-8", ErrInvalidTopic, t)
	}
	for i, tok := range strings.Split(t, ".") {
		last := i == strings.Count(t, ".")
		switch {
		case tok == "":
			return fmt.Errorf("%w %q: empty token (leading, trailing or double dot)", ErrInvalidTopic, t)
		case tok == "*" || tok == ">":
			if !wildcards {
				return fmt.Errorf("%w %q: wildcard %q not allowed here", ErrInvalidTopic, t, tok)
			}
			if tok == ">" && !last {
				return fmt.Errorf("%w %q: '>' must be the last token", ErrInvalidTopic, t)
			}
		default:
			for _, r := range tok {
				switch {
				case unicode.IsSpace(r) || unicode.IsControl(r):
					return fmt.Errorf("%w %q: contains white space or a control character", ErrInvalidTopic, t)
				case r == '*' || r == '>':
					return fmt.Errorf("%w %q: %q must be a whole token", ErrInvalidTopic, t, r)
				}
			}
		}
	}
	return nil
}

// Covers reports whether filter a matches every topic that filter b matches. It does not
// allocate: the hub calls it for every event a resuming stream catches up on from memory.
func Covers(a, b string) bool {
	for {
		at, arest, amore := strings.Cut(a, ".")
		if at == ">" {
			return b != ""
		}
		if b == "" {
			return false
		}
		bt, brest, bmore := strings.Cut(b, ".")
		switch at {
		case "*":
			if bt == ">" {
				return false
			}
		default:
			if bt != at {
				return false
			}
		}
		if !amore || !bmore {
			return amore == bmore
		}
		a, b = arest, brest
	}
}

// ReduceFilters drops the filters that another filter in the list already covers, and
// duplicates, keeping the first-seen order. JetStream refuses a consumer whose filters
// contain one another.
func ReduceFilters(filters []string) []string {
	out := make([]string, 0, len(filters))
	for i, f := range filters {
		covered := false
		for j, g := range filters {
			if i == j {
				continue
			}
			// Of two equal filters, keep the first.
			if Covers(g, f) && (!Covers(f, g) || j < i) {
				covered = true
				break
			}
		}
		if !covered {
			out = append(out, f)
		}
	}
	return out
}
