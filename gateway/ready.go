package gateway

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/natsse/natsse/natsbus"
)

// feedStallAfter is how long the live feed may stand still while the stream holds newer
// events before the gateway stops calling itself ready: the feed replaces a stalled
// consumer after about six quiet seconds, so a feed still behind after this has failed to.
const feedStallAfter = 12 * time.Second

// stateWait bounds the readiness check's wait for the stream's state, where this process
// holds no copy of it.
const stateWait = time.Second

// feedWatch remembers since when the readiness checks have seen the live feed stand still
// behind the stream.
type feedWatch struct {
	mu    sync.Mutex
	pos   uint64    // the hub's position at the last check
	since time.Time // the first check that saw it behind there; zero if the last did not
}

// stalled reports how long the checks have seen the feed stand at pos while the stored
// stream's last sequence is beyond it: 0 if it moved since the last check, is not behind,
// or the last check could not tell (see reset).
func (f *feedWatch) stalled(pos, last uint64, now time.Time) time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case last <= pos:
		f.pos, f.since = pos, time.Time{}
		return 0
	case pos != f.pos || f.since.IsZero():
		f.pos, f.since = pos, now
		return 0
	}
	return now.Sub(f.since)
}

// reset forgets what the checks saw: a node that was not ready (cut off, say) had no feed
// to follow, and its stall counts from the next check.
func (f *feedWatch) reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.since = time.Time{}
}

// handleReady answers 200 while the gateway can store and deliver events: its NATS
// connection is up, its node is not cut off from the cluster (see natsbus.Bus.Ready), and
// its live feed follows the stream.
func (g *Gateway) handleReady(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), 5*time.Second)
	defer cancel()
	if err := g.bus.Ready(ctx); err != nil {
		g.ready.reset()
		g.writeError(c, err)
		return
	}
	// The feed is judged against this process's own copy of the stream, read in place, as
	// asking the stream would wait out an election; without a copy, by the stream's answer
	// if it comes soon.
	last, ok := g.bus.StoredLast()
	if !ok {
		sctx, cancel := context.WithTimeout(ctx, stateWait)
		var err error
		_, last, err = g.bus.State(sctx)
		cancel()
		ok = err == nil
	}
	if ok {
		pos := g.hub.position()
		if d := g.ready.stalled(pos, last, time.Now()); d >= feedStallAfter {
			g.writeError(c, fmt.Errorf("%w: the live feed has stood still for %s at sequence %d, behind the stored %d",
				natsbus.ErrUnavailable, d.Round(time.Second), pos, last))
			return
		}
	}
	c.JSON(http.StatusOK, gin.H{"status": "ready"})
}
