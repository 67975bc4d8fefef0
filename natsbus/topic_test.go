package natsbus

import (
	"errors"
	"fmt"
	"testing"
)

func TestValidateTopic(t *testing.T) {
	t.Parallel()
	tests := []struct {
		topic       string
		publishOK   bool
		subscribeOK bool
	}{
		{"orders", true, true},
		{"orders.eu", true, true},
		{"orders.eu-west_1", true, true},
		{"ünïcode.ok", true, true},
		{"", false, false},
		{"a..b", false, false},
		{".a", false, false},
		{"a.", false, false},
		{"a b", false, false},
		{"a\tb", false, false},
		{"a\x00b", false, false},
		{"a.*", false, true},
		{"*", false, true},
		{">", false, true},
		{"a.>", false, true},
		{"a.>.b", false, false},
		{"a*", false, false},
		{"a.b>", false, false},
		{"\xff", false, false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.topic), func(t *testing.T) {
			if err := ValidateTopic(tt.topic); (err == nil) != tt.publishOK {
				t.Errorf("ValidateTopic: %v, want ok=%v", err, tt.publishOK)
			} else if err != nil && !errors.Is(err, ErrInvalidTopic) {
				t.Errorf("error %v is not ErrInvalidTopic", err)
			}
			if err := ValidateFilter(tt.topic); (err == nil) != tt.subscribeOK {
				t.Errorf("ValidateFilter: %v, want ok=%v", err, tt.subscribeOK)
			}
		})
	}
}

func TestCovers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a, b string
		want bool
	}{
		{"a", "a", true},
		{"a", "b", false},
		{"a.*", "a.b", true},
		{"a.*", "a.b.c", false},
		{"a.*", "a", false},
		{"a.>", "a.b.c", true},
		{"a.>", "a", false},
		{"a.>", "a.*", true},
		{"a.>", "a.>", true},
		{"a.*", "a.>", false},
		{">", "x.y", true},
		{"*.b", "a.*", false},
		{"*.*", "a.*", true},
		{"a.b", "a.*", false},
		{"a.b", "a.b.c", false},
		{"a.b.c", "a.b", false},
		{"a.*.c", "a.b.c", true},
		{"a.*.c", "a.b.d", false},
		{"*", "a", true},
		{"*", "a.b", false},
	}
	for _, tt := range tests {
		if got := Covers(tt.a, tt.b); got != tt.want {
			t.Errorf("Covers(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

// TestCoversAllocs: the hub calls Covers for every event a resuming stream catches up on
// from memory, under its lock. (Not parallel: AllocsPerRun counts the whole process.)
func TestCoversAllocs(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() { Covers("orders.*.>", "orders.eu.created.x") }); n != 0 {
		t.Errorf("Covers allocates %v times per call", n)
	}
}

func TestReduceFilters(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want []string }{
		{[]string{"a", "b"}, []string{"a", "b"}},
		{[]string{"a.b", "a.*"}, []string{"a.*"}},
		{[]string{"a.*", "a.>", "a.b.c"}, []string{"a.>"}},
		{[]string{"x", "x", "y"}, []string{"x", "y"}},
		{[]string{"a.*", "*.b"}, []string{"a.*", "*.b"}},
		{[]string{">", "a", "b.*"}, []string{">"}},
	}
	for _, tt := range tests {
		if got := ReduceFilters(tt.in); fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("ReduceFilters(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
