package gateway

import "sync/atomic"

// Stats is a snapshot of the gateway's counters.
type Stats struct {
	Connections int64  `json:"connections"` // open streams
	Dispatched  uint64 `json:"dispatched"`  // events fanned out by the live feed
	SlowCut     uint64 `json:"slow_cut"`    // streams that fell behind their buffer, to catch up
	Sanitized   uint64 `json:"sanitized"`   // events whose data or type had to be repaired
	LastSeq     uint64 `json:"last_seq"`    // the last stream sequence dispatched
}

// counters are the hub's running totals; they are updated with atomics, so that reading
// them takes no lock.
type counters struct {
	connections atomic.Int64
	dispatched  atomic.Uint64
	cut         atomic.Uint64
	sanitized   atomic.Uint64
}
