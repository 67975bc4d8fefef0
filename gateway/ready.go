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

// feedWatch remembers when the live feed last moved, as seen by the readiness checks.
type feedWatch struct {
	mu    sync.Mutex
	pos   uint64    // the hub's position at the last check that saw it move
	since time.Time // when
}

// stalled reports how long the feed has stood at pos while the stream's last sequence is
// beyond it, or 0 if it moved since the last check or is not behind.
func (f *feedWatch) stalled(pos, last uint64, now time.Time) time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	if pos != f.pos || f.since.IsZero() || last <= pos {
		f.pos, f.since = pos, now
		return 0
	}
	return now.Sub(f.since)
}

// handleReady answers 200 while the gateway can store and deliver events: its NATS
// connection is up, its node is not cut off from the cluster (see natsbus.Bus.Ready), and
// its live feed follows the stream.
func (g *Gateway) handleReady(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), 5*time.Second)
	defer cancel()
	if err := g.bus.Ready(ctx); err != nil {
		g.writeError(c, err)
		return
	}
	if _, last, err := g.bus.State(ctx); err == nil {
		if d := g.ready.stalled(g.hub.position(), last, time.Now()); d >= feedStallAfter {
			g.writeError(c, fmt.Errorf("%w: the live feed has stood still for %s at sequence %d, behind the stream's %d",
				natsbus.ErrUnavailable, d.Round(time.Second), g.hub.position(), last))
			return
		}
	}
	c.JSON(http.StatusOK, gin.H{"status": "ready"})
}
