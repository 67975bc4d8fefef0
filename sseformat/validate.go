package sseformat

import (
	"errors"
	"fmt"
	"unicode/utf8"
)

var (
	// ErrInvalidID reports an event id that cannot be sent safely. Errors
	// returned by ValidateID wrap it with the reason.
	ErrInvalidID = errors.New("sseformat: invalid id")

	// ErrInvalidType reports an event type that cannot be sent. Errors
	// returned by ValidateType wrap it with the reason.
	ErrInvalidType = errors.New("sseformat: invalid event type")

	// ErrInvalidData reports event data that cannot be sent. Errors returned
	// by ValidateData wrap it with the reason.
	ErrInvalidData = errors.New("sseformat: invalid data")

	// ErrInvalidRetry reports a negative retry duration.
	ErrInvalidRetry = errors.New("sseformat: invalid retry")

	// ErrTooLarge reports a line or an event's data longer than a Decoder's
	// maximum event size.
	ErrTooLarge = errors.New("sseformat: event too large")
)

// ValidateID reports whether id can be sent as an event id. It rejects a CR or
// LF (which would inject fields), NUL (browsers silently ignore such an id),
// invalid UTF-8, and leading or trailing spaces or tabs (HTTP trims them from
// the Last-Event-ID header, so the id would not come back as sent). The empty
// id is valid: it means no id. Errors wrap [ErrInvalidID].
func ValidateID(id string) error {
	if reason := checkField(id); reason != "" {
		return fmt.Errorf("%w: %s", ErrInvalidID, reason)
	}
	if id != "" && (isBlank(id[0]) || isBlank(id[len(id)-1])) {
		return fmt.Errorf("%w: has a leading or trailing space or tab", ErrInvalidID)
	}
	return nil
}

// ValidateType reports whether t can be sent as an event type: it rejects a
// CR or LF (which would inject fields), NUL and invalid UTF-8. The empty type
// is valid: it means the default type, "message". Errors wrap
// [ErrInvalidType].
func ValidateType(t string) error {
	if reason := checkField(t); reason != "" {
		return fmt.Errorf("%w: %s", ErrInvalidType, reason)
	}
	return nil
}

// ValidateData reports whether d can be sent as event data: it rejects invalid
// UTF-8, which browsers would turn into U+FFFD. Line breaks are valid; they
// split the data into several data lines and arrive as LF. Errors wrap
// [ErrInvalidData].
func ValidateData(d string) error {
	if i := invalidUTF8(d); i >= 0 {
		return fmt.Errorf("%w: invalid UTF-8 at byte %d", ErrInvalidData, i)
	}
	return nil
}

// Validate reports the first problem with e that would keep it from reaching
// clients exactly as given: it applies [ValidateID], [ValidateType] and
// [ValidateData], and rejects a negative Retry with [ErrInvalidRetry].
func (e Event) Validate() error {
	if err := ValidateID(e.ID); err != nil {
		return err
	}
	if err := ValidateType(e.Type); err != nil {
		return err
	}
	if err := ValidateData(e.Data); err != nil {
		return err
	}
	if e.Retry < 0 {
		return fmt.Errorf("%w: negative duration %v", ErrInvalidRetry, e.Retry)
	}
	return nil
}

// checkField returns why s cannot be a single-line field value, or "".
func checkField(s string) string {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\r', '\n':
			return fmt.Sprintf("contains a line break at byte %d", i)
		case 0:
			return fmt.Sprintf("contains a NUL byte at byte %d", i)
		}
	}
	if i := invalidUTF8(s); i >= 0 {
		return fmt.Sprintf("invalid UTF-8 at byte %d", i)
	}
	return ""
}

// invalidUTF8 returns the offset of the first invalid UTF-8 sequence in s, or
// -1 if s is valid UTF-8.
func invalidUTF8(s string) int {
	if utf8.ValidString(s) {
		return -1
	}
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			return i
		}
		i += size
	}
	return -1 // unreachable: ValidString said otherwise
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' }
