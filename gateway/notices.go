package gateway

import (
	"encoding/json"

	"github.com/natsse/natsse/sseformat"
)

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
	gp.ResumeID = position{epoch: g.bus.Epoch(), seq: cursor}.String()
	data, _ := json.Marshal(gp)
	return w.write(sseformat.AppendEvent(nil, sseformat.Event{ID: gp.ResumeID, Type: GapEventType, Data: string(data)}))
}
