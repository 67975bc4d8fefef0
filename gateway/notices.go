package gateway

import (
	"encoding/json"
	"errors"

	"github.com/natsse/natsse/sseformat"
)

// The gateway's own notices on a stream: a gap, and an expired token.

// gap is the data of the reserved "gap" event (GapEventType), sent first when a stream
// cannot continue exactly where the client left off.
type gap struct {
	Reason      string `json:"reason"` // "expired", "stream_reset" or "ahead"
	Message     string `json:"message"`
	LastEventID string `json:"last_event_id"` // the id the client resumed from
	ResumeID    string `json:"resume_id"`     // the position the stream continues from
	// Lost is the range of stream sequences the client may have missed (those of its
	// topics among them), when known.
	LostFromSeq uint64 `json:"lost_from_seq,omitempty"`
	LostToSeq   uint64 `json:"lost_to_seq,omitempty"`
}

// writeGap sends a gap notice whose id is the position the stream continues after.
func (g *Gateway) writeGap(w *streamWriter, gp *gap, cursor uint64) error {
	g.metrics.gaps.WithLabelValues(gp.Reason).Inc()
	gp.ResumeID = position{epoch: g.bus.Epoch(), seq: cursor}.String()
	data, _ := json.Marshal(gp)
	w.last = cursor
	return w.write(sseformat.AppendEvent(nil, sseformat.Event{ID: gp.ResumeID, Type: GapEventType, Data: string(data)}))
}

// errTokenExpired ends a stream whose token expired.
var errTokenExpired = errors.New("gateway: the stream's token expired")

// tokenExpired is the data of the reserved "token_expired" event (TokenExpiredEventType),
// sent last on a stream whose token expired.
type tokenExpired struct {
	Message string `json:"message"`
	// LastEventID is the id the client has reached: it resumes from there. It is "" when
	// the client has no position yet (the token expired before the first of the newest
	// events it asked for): it reconnects as it first did.
	LastEventID string `json:"last_event_id"`
}

// writeTokenExpired ends a stream whose token expired. Its id is the position the client
// has reached (the last event's id, or where the stream began), so that a reconnection
// resumes exactly there, even on a stream that had no event yet. A client without a
// position gets no id, and reconnects as it first did.
func (g *Gateway) writeTokenExpired(w *streamWriter) error {
	var id string
	if !w.unplaced {
		id = position{epoch: g.bus.Epoch(), seq: w.last}.String()
	}
	data, _ := json.Marshal(tokenExpired{
		Message:     "the token expired: reconnect with a fresh token to resume from last_event_id",
		LastEventID: id,
	})
	if err := w.write(sseformat.AppendEvent(nil, sseformat.Event{ID: id, Type: TokenExpiredEventType, Data: string(data)})); err != nil {
		return err
	}
	return w.flush()
}
