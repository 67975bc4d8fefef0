package gateway

import (
	"net/http"
	"sync/atomic"
	"time"
)

// dateCache holds the value of the Date header for the current second, so that answers
// that set it spare net/http formatting the time for each. It is safe for concurrent use;
// the zero value is ready.
type dateCache struct {
	last atomic.Pointer[dateValue]
}

type dateValue struct {
	unix   int64
	header []string // never modified once stored
}

// header returns the Date header's value at now.
func (d *dateCache) header(now time.Time) []string {
	unix := now.Unix()
	if v := d.last.Load(); v != nil && v.unix == unix {
		return v.header
	}
	v := &dateValue{unix: unix, header: []string{now.UTC().Format(http.TimeFormat)}}
	d.last.Store(v)
	return v.header
}
