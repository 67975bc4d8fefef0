package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/natsse/natsse/natsbus"
)

// Options configure a Gateway. The zero value of each field is its documented default,
// except Bus, which is required.
type Options struct {
	// Bus stores and follows the events. Required; the Gateway does not close it.
	Bus *natsbus.Bus
	// Logger receives the Gateway's logs. Nil discards them.
	Logger *slog.Logger
	// KeepAlive is the interval of the keep-alive comment on idle streams. Default 15s.
	KeepAlive time.Duration
	// Retry is the reconnection delay sent to clients once per stream. Default 3s.
	Retry time.Duration
	// BufferSize is the number of events queued per connection before it is cut off as too
	// slow. Default 512.
	BufferSize int
	// RecentEvents is the number of recent events kept in memory to serve resuming clients
	// without reading the stream. Default 4096; negative keeps none.
	RecentEvents int
	// MaxEventBytes bounds an HTTP publish: the encoded SSE event (id, event and data lines)
	// may not exceed it. Default 65536, what common SSE client libraries accept.
	MaxEventBytes int
	// MaxHeaderBytes bounds a request's line and headers; larger requests get 431.
	// Default 32 KiB.
	MaxHeaderBytes int
	// MaxTopics bounds the topics of one stream. Default 32.
	MaxTopics int
	// WriteTimeout bounds every write to a stream: a client that does not take the bytes in
	// time is cut off. Default 10s.
	WriteTimeout time.Duration
	// PublishTimeout bounds the wait for the stream's acknowledgement. Default 10s.
	PublishTimeout time.Duration
	// CORSOrigins lists the origins allowed to use the gateway from a browser page on another
	// origin; "*" allows any. Empty: same-origin only.
	CORSOrigins []string
}

func (o *Options) setDefaults() error {
	if o.Bus == nil {
		return errors.New("gateway: Options.Bus is required")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.KeepAlive <= 0 {
		o.KeepAlive = 15 * time.Second
	}
	if o.Retry <= 0 {
		o.Retry = 3 * time.Second
	}
	if o.BufferSize <= 0 {
		o.BufferSize = 512
	}
	if o.RecentEvents == 0 {
		o.RecentEvents = 4096
	} else if o.RecentEvents < 0 {
		o.RecentEvents = 0
	}
	if o.MaxEventBytes <= 0 {
		o.MaxEventBytes = 65536
	}
	if o.MaxHeaderBytes <= 0 {
		o.MaxHeaderBytes = 32 << 10
	}
	if o.MaxTopics <= 0 {
		o.MaxTopics = 32
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 10 * time.Second
	}
	if o.PublishTimeout <= 0 {
		o.PublishTimeout = 10 * time.Second
	}
	return nil
}

// Gateway is the HTTP side: SSE streams, publishes and health checks.
type Gateway struct {
	opts   Options
	log    *slog.Logger
	bus    *natsbus.Bus
	hub    *Hub
	feed   *natsbus.Feed
	engine *gin.Engine
	cors   corsPolicy

	mu        sync.Mutex
	closing   bool
	stopWatch chan struct{}              // closed to stop watchFeed
	watchDone chan struct{}              // closed when watchFeed has returned; it owns feed until then
	streams   sync.WaitGroup             // stream handlers running
	active    map[*streamWriter]struct{} // their writers, to abort on shutdown
	closeOnce sync.Once
	closeErr  error
}

// New starts following the bus's stream and returns a Gateway ready to serve.
func New(opts Options) (*Gateway, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	cors, err := newCORSPolicy(opts.CORSOrigins)
	if err != nil {
		return nil, err
	}
	g := &Gateway{opts: opts, log: opts.Logger, bus: opts.Bus, cors: cors, active: make(map[*streamWriter]struct{})}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, last, err := g.bus.State(ctx)
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	g.hub = newHub(g.log, g.bus.Epoch(), last, opts.RecentEvents)
	g.feed, err = g.bus.Follow(last, g.hub.dispatch)
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	g.engine = g.routes()
	g.stopWatch, g.watchDone = make(chan struct{}), make(chan struct{})
	go g.watchFeed(g.stopWatch)
	return g, nil
}

// Handler returns the gateway's HTTP handler.
func (g *Gateway) Handler() http.Handler { return g.engine }

// Stats is a snapshot of the gateway's counters.
type Stats struct {
	Connections int64  `json:"connections"` // open streams
	Dispatched  uint64 `json:"dispatched"`  // events fanned out by the live feed
	SlowCut     uint64 `json:"slow_cut"`    // streams cut off because their buffer was full
	Sanitized   uint64 `json:"sanitized"`   // events whose data or type had to be repaired
	LastSeq     uint64 `json:"last_seq"`    // the last stream sequence dispatched
}

// Stats returns the gateway's counters. It is safe for concurrent use.
func (g *Gateway) Stats() Stats {
	last := g.hub.position()
	return Stats{
		Connections: g.hub.stats.connections.Load(),
		Dispatched:  g.hub.stats.dispatched.Load(),
		SlowCut:     g.hub.stats.cut.Load(),
		Sanitized:   g.hub.stats.sanitized.Load(),
		LastSeq:     last,
	}
}

// Shutdown ends every stream (clients reconnect, elsewhere or later) and waits for their
// handlers to return. Streams whose clients do not take their last bytes by the time ctx
// is done are aborted. Then it stops the live feed and deletes its consumer. New streams
// are answered with a retry hint and an empty body. Shutdown is idempotent; later calls
// return at once.
func (g *Gateway) Shutdown(ctx context.Context) error {
	g.closeOnce.Do(func() {
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
		close(g.stopWatch)
		<-g.watchDone
		if g.feed != nil {
			g.closeErr = g.feed.Close()
		}
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
