package gateway

import (
	"context"
	"fmt"
	"time"

	"github.com/natsse/natsse/natsbus"
)

// How a resume from an id beyond this gateway's view of the stream waits for the view to
// reach it: a gateway that lags (its node was cut off, or is catching up) must neither
// rewind the client nor call the id ahead of the stream.
const (
	aheadWait = 3 * time.Second
	aheadPoll = 100 * time.Millisecond
)

// resolveStart turns the client's resume point into a sequence to continue after, and the
// gap notice to send first, if any.
func (g *Gateway) resolveStart(ctx context.Context, r streamRequest) (uint64, *gap, error) {
	if err := g.bus.CutOff(); err != nil {
		return 0, nil, err // this node cannot deliver: the client comes back, here or elsewhere
	}
	if r.lastID == "" {
		return g.hub.position(), nil, nil
	}
	// Ask the stream, even when the ring holds the events: a resume must see the same
	// history, with the same gaps, on every gateway. An id beyond the stream's end is
	// "ahead" only as the stream's leader sees it: a gateway whose view lags waits for it.
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
		if !g.bus.Standalone() {
			if last, err = g.awaitView(ctx, r.resume.seq); err != nil {
				return 0, nil, err
			}
			if last >= r.resume.seq {
				return r.resume.seq, nil, nil
			}
		}
		return last, &gap{
			Reason:  "ahead",
			Message: "the id is beyond the end of the stream; continuing with new events",
		}, nil
	}
	return r.resume.seq, nil, nil
}

// awaitView waits, for aheadWait at most, until the stream as this gateway sees it (its
// own live feed, or the stream's answer) reaches seq, and returns the last sequence seen.
// It gives up with an error, for the client to come back later, if the node is cut off
// from the cluster meanwhile or the stream cannot answer.
func (g *Gateway) awaitView(ctx context.Context, seq uint64) (uint64, error) {
	deadline := time.Now().Add(aheadWait)
	tick := time.NewTicker(aheadPoll)
	defer tick.Stop()
	for {
		if pos := g.hub.position(); pos >= seq {
			return pos, nil
		}
		if err := g.bus.CutOff(); err != nil {
			return 0, err
		}
		_, last, err := g.bus.State(ctx)
		if err != nil || last >= seq || !time.Now().Before(deadline) {
			return last, err
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return 0, fmt.Errorf("%w: waiting for sequence %d: %w", natsbus.ErrUnavailable, seq, ctx.Err())
		}
	}
}
