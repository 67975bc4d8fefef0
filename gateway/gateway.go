package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/natsse/natsse/natsbus"
)

// Gateway is the HTTP side: SSE streams, publishes and health checks.
type Gateway struct {
	opts    Options
	log     *slog.Logger
	bus     *natsbus.Bus
	hub     *hub
	feed    *natsbus.Feed // set once by New; it repairs itself
	metrics *metrics
	engine  *gin.Engine
	cors    corsPolicy
	limits  *limits
	dates   dateCache // the Date header of publish answers
	ready   feedWatch // the live feed's progress, for /readyz

	presence *natsbus.Presence // set once by New: answers the other gateways' surveys
	hangups  *hangups          // set once by New: tells parked streams their client left; nil if unavailable

	mu        sync.Mutex
	closing   bool
	streams   sync.WaitGroup             // streams not ended
	runners   sync.WaitGroup             // goroutines running parked streams
	active    map[*streamWriter]struct{} // their writers, to abort on shutdown
	closeOnce sync.Once
	closeErr  error
}

// New starts following the bus's stream and returns a Gateway ready to serve.
func New(opts Options) (*Gateway, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	cors, _ := newCORSPolicy(opts.CORSOrigins) // checked by Validate
	g := &Gateway{opts: opts, log: opts.Logger, bus: opts.Bus, cors: cors, limits: newLimits(opts),
		active: make(map[*streamWriter]struct{})}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, last, err := g.bus.State(ctx)
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	g.hub = newHub(g.log, g.bus.Epoch, last, opts.RecentEvents)
	if err := g.fillRing(ctx, last); err != nil {
		g.log.Warn("gateway: starting with an empty ring: resuming clients catch up from the stream", "err", err)
	}
	g.metrics = newMetrics(g)
	g.feed, err = g.bus.Follow(last, g.hub.dispatch)
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	g.presence, err = g.bus.ServePresence(g.hub.streamsOn)
	if err != nil {
		g.feed.Close()
		return nil, fmt.Errorf("gateway: %w", err)
	}
	if g.hangups, err = newHangups(); err != nil {
		g.log.Warn("streams will each read their connection to see their client leave", "err", err)
	}
	g.engine = g.routes()
	return g, nil
}

// Handler returns the gateway's HTTP handler.
func (g *Gateway) Handler() http.Handler { return g.engine }

// MetricsHandler serves the gateway's Prometheus metrics, for a listener of their own
// (see Options.ServeMetrics).
func (g *Gateway) MetricsHandler() http.Handler { return g.metrics.handler() }

// Stats returns the gateway's counters. It is safe for concurrent use.
func (g *Gateway) Stats() Stats { return g.hub.stats() }

// Shutdown stops answering the other gateways' presence surveys, ends every stream
// (clients reconnect, elsewhere or later) and waits for their handlers to return. Streams
// whose clients do not take their last bytes by the time ctx is done are aborted. Then it
// closes the live feed, which deletes its consumer. New streams are answered with a retry
// hint and no event. Shutdown is idempotent; later calls return at once.
func (g *Gateway) Shutdown(ctx context.Context) error {
	g.closeOnce.Do(func() {
		g.presence.Close()
		g.mu.Lock()
		g.closing = true
		g.mu.Unlock()
		g.hub.close()
		done := make(chan struct{})
		go func() { g.streams.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			g.mu.Lock()
			n := len(g.active)
			for w := range g.active {
				w.abort()
			}
			g.mu.Unlock()
			g.log.Warn("shutdown: aborted streams whose clients were not reading", "streams", n)
			<-done
		}
		g.runners.Wait()
		g.hangups.close()
		g.closeErr = g.feed.Close()
	})
	return g.closeErr
}

// Close is Shutdown with a grace of two seconds.
func (g *Gateway) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return g.Shutdown(ctx)
}

// enter counts a stream handler in, unless the Gateway is closing.
func (g *Gateway) enter(w *streamWriter) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closing {
		return false
	}
	g.streams.Add(1)
	g.active[w] = struct{}{}
	return true
}

// leave counts a stream handler out.
func (g *Gateway) leave(w *streamWriter) {
	g.mu.Lock()
	delete(g.active, w)
	g.mu.Unlock()
	g.streams.Done()
}
