package gateway

import (
	"net/http"
	"testing"
	"time"
)

func TestDateCache(t *testing.T) {
	t.Parallel()
	var d dateCache
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("X", 3600))
	for _, tc := range []struct {
		now  time.Time
		want string
	}{
		{at, "Fri, 02 Jan 2026 02:04:05 GMT"},
		{at.Add(999 * time.Millisecond), "Fri, 02 Jan 2026 02:04:05 GMT"},
		{at.Add(time.Second), "Fri, 02 Jan 2026 02:04:06 GMT"},
		{at.Add(-time.Hour), "Fri, 02 Jan 2026 01:04:05 GMT"},
	} {
		if got := d.header(tc.now); len(got) != 1 || got[0] != tc.want || got[0] != tc.now.UTC().Format(http.TimeFormat) {
			t.Errorf("at %s: %q, want %q", tc.now, got, tc.want)
		}
	}
}
