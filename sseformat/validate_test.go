package sseformat

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		ev      Event
		wantErr error  // nil: valid
		wantMsg string // the complete error message
	}{
		{name: "zero event", ev: Event{}},
		{name: "all fields", ev: Event{ID: "1", Type: "t", Data: "d", Retry: time.Second}},
		{name: "id with inner space", ev: Event{ID: "a b", Data: "x"}},
		{name: "id with colon", ev: Event{ID: "stream:42", Data: "x"}},
		{name: "unicode everywhere", ev: Event{ID: "ü-1", Type: "ÿ", Data: "🎉"}},
		{name: "type with spaces", ev: Event{Type: " t ", Data: "x"}},
		{name: "data with line breaks", ev: Event{Data: "a\r\nb\rc\n"}},
		{name: "data with NUL", ev: Event{Data: "a\x00b"}},
		{name: "zero retry", ev: Event{Retry: 0}},

		{name: "id LF", ev: Event{ID: "1\n2"}, wantErr: ErrInvalidID,
			wantMsg: "sseformat: invalid id: contains a line break at byte 1"},
		{name: "id CR", ev: Event{ID: "12\r"}, wantErr: ErrInvalidID,
			wantMsg: "sseformat: invalid id: contains a line break at byte 2"},
		{name: "id NUL", ev: Event{ID: "a\x00"}, wantErr: ErrInvalidID,
			wantMsg: "sseformat: invalid id: contains a NUL byte at byte 1"},
		{name: "id invalid UTF-8", ev: Event{ID: "ab\xff"}, wantErr: ErrInvalidID,
			wantMsg: "sseformat: invalid id: invalid UTF-8 at byte 2"},
		{name: "id leading space", ev: Event{ID: " 1"}, wantErr: ErrInvalidID,
			wantMsg: "sseformat: invalid id: has a leading or trailing space or tab"},
		{name: "id trailing space", ev: Event{ID: "1 "}, wantErr: ErrInvalidID,
			wantMsg: "sseformat: invalid id: has a leading or trailing space or tab"},
		{name: "id leading tab", ev: Event{ID: "\t1"}, wantErr: ErrInvalidID,
			wantMsg: "sseformat: invalid id: has a leading or trailing space or tab"},
		{name: "id trailing tab", ev: Event{ID: "1\t"}, wantErr: ErrInvalidID,
			wantMsg: "sseformat: invalid id: has a leading or trailing space or tab"},
		{name: "id only a space", ev: Event{ID: " "}, wantErr: ErrInvalidID,
			wantMsg: "sseformat: invalid id: has a leading or trailing space or tab"},

		{name: "type LF", ev: Event{Type: "a\nb"}, wantErr: ErrInvalidType,
			wantMsg: "sseformat: invalid event type: contains a line break at byte 1"},
		{name: "type CR", ev: Event{Type: "\r"}, wantErr: ErrInvalidType,
			wantMsg: "sseformat: invalid event type: contains a line break at byte 0"},
		{name: "type NUL", ev: Event{Type: "\x00"}, wantErr: ErrInvalidType,
			wantMsg: "sseformat: invalid event type: contains a NUL byte at byte 0"},
		{name: "type invalid UTF-8", ev: Event{Type: "\xc3"}, wantErr: ErrInvalidType,
			wantMsg: "sseformat: invalid event type: invalid UTF-8 at byte 0"},

		{name: "data invalid UTF-8", ev: Event{Data: "ok\n\xed\xa0\x80"}, wantErr: ErrInvalidData,
			wantMsg: "sseformat: invalid data: invalid UTF-8 at byte 3"},

		{name: "negative retry", ev: Event{Retry: -time.Millisecond}, wantErr: ErrInvalidRetry,
			wantMsg: "sseformat: invalid retry: negative duration -1ms"},

		{name: "first problem wins", ev: Event{ID: "\n", Type: "\n", Data: "\xff", Retry: -1},
			wantErr: ErrInvalidID, wantMsg: "sseformat: invalid id: contains a line break at byte 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.ev.Validate()
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Validate(%+q) = %v, want nil", tt.ev, err)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Validate(%+q) = %v, want an error wrapping %v", tt.ev, err, tt.wantErr)
			}
			if err.Error() != tt.wantMsg {
				t.Errorf("Validate(%+q) message = %q, want %q", tt.ev, err.Error(), tt.wantMsg)
			}
		})
	}
}

func TestValidateFunctions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		fn      func(string) error
		in      string
		wantErr error
	}{
		{"ValidateID empty", ValidateID, "", nil},
		{"ValidateID ok", ValidateID, "abc-123", nil},
		{"ValidateID LF", ValidateID, "a\n", ErrInvalidID},
		{"ValidateID NUL", ValidateID, "\x00", ErrInvalidID},
		{"ValidateID space", ValidateID, "a ", ErrInvalidID},
		{"ValidateType empty", ValidateType, "", nil},
		{"ValidateType ok", ValidateType, "message", nil},
		{"ValidateType CRLF", ValidateType, "a\r\n", ErrInvalidType},
		{"ValidateType bad UTF-8", ValidateType, "\x80", ErrInvalidType},
		{"ValidateData empty", ValidateData, "", nil},
		{"ValidateData line breaks", ValidateData, "\r\n\r\n", nil},
		{"ValidateData long", ValidateData, strings.Repeat("ü", 1000), nil},
		{"ValidateData bad UTF-8", ValidateData, strings.Repeat("ü", 1000) + "\xc3", ErrInvalidData},
		{"ValidateData surrogate", ValidateData, "\xed\xb0\x80", ErrInvalidData},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.fn(tt.in)
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("%s(%q) = %v, want %v", tt.name, tt.in, err, tt.wantErr)
			}
		})
	}
}
