package gateway

import (
	"context"
	"time"
)

// feedCheck is how often the watchdog looks at the live feed, and feedStallChecks how many
// checks in a row may see it stalled behind the stream before it is restarted.
const (
	feedCheck       = 2 * time.Second
	feedStallChecks = 3
)

// watchFeed restarts the live feed when it stops advancing while the stream has moved on.
// That happens in a cluster when the node holding the feed's consumer dies: the consumer
// can keep trying to come back on that node until it returns. It runs until stop is
// closed.
func (g *Gateway) watchFeed(stop <-chan struct{}) {
	defer close(g.watchDone)
	tick := time.NewTicker(feedCheck)
	defer tick.Stop()
	prev, stalled := g.hub.position(), 0
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		last := g.hub.position()
		if last != prev {
			prev, stalled = last, 0
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), feedCheck)
		_, streamLast, err := g.bus.State(ctx)
		cancel()
		if err != nil || streamLast <= last {
			stalled = 0
			continue
		}
		if stalled++; stalled < feedStallChecks {
			continue
		}
		stalled = 0
		g.log.Warn("live feed stalled behind the stream; restarting it", "at", last, "stream_last", streamLast)
		// Stop the old feed before following again from the hub's position: two feeds at
		// once could skip events.
		if err := g.feed.Close(); err != nil {
			g.log.Warn("closing the stalled feed", "err", err)
		}
		for {
			feed, err := g.bus.Follow(g.hub.position(), g.hub.dispatch)
			if err == nil {
				g.feed = feed
				break
			}
			g.log.Warn("restarting the live feed", "err", err)
			select {
			case <-stop:
				g.feed = nil
				return
			case <-time.After(feedCheck):
			}
		}
	}
}
