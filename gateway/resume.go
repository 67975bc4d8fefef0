package gateway

import "context"

// resolveStart turns the client's resume point into a sequence to continue after, and the
// gap notice to send first, if any.
func (g *Gateway) resolveStart(ctx context.Context, r streamRequest) (uint64, *gap, error) {
	if r.lastID == "" {
		return g.hub.position(), nil, nil
	}
	// Ask the stream, even when the ring holds the events: a resume must see the same
	// history, with the same gaps, on every gateway.
	first, last, err := g.bus.State(ctx)
	if err != nil {
		return 0, nil, err
	}
	switch {
	case r.lastID == lastIDEarliest:
		return first - 1, nil, nil
	case r.resume.epoch != g.bus.Epoch():
		return first - 1, &gap{
			Reason:  "stream_reset",
			Message: "the id is from an earlier incarnation of the stream (deleted or wiped since); continuing from the oldest stored event",
		}, nil
	case r.resume.seq+1 < first:
		return first - 1, &gap{
			Reason:      "expired",
			Message:     "events after the id were removed by the retention limits; continuing from the oldest stored event",
			LostFromSeq: r.resume.seq + 1,
			LostToSeq:   first - 1,
		}, nil
	case r.resume.seq > last:
		return last, &gap{
			Reason:  "ahead",
			Message: "the id is beyond the end of the stream; continuing with new events",
		}, nil
	}
	return r.resume.seq, nil, nil
}
