package natsbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/singleflight"
)

// Errors returned by the Bus.
var (
	ErrClosed        = errors.New("natsbus: closed")
	ErrDataDirLocked = errors.New("natsbus: data dir locked")
	ErrUnavailable   = errors.New("natsbus: stream unavailable")
	ErrListen        = errors.New("natsbus: cannot listen for NATS clients on")
	ErrConnect       = errors.New("natsbus: cannot connect to the NATS deployment at")
	ErrLeafRefused   = errors.New("natsbus: the deployment refused the leaf node's connection")
)

// Bus is a running NATS server with the gateway's stream, and a connection to it.
type Bus struct {
	opts    Options
	log     *slog.Logger
	auth    *clientAuthenticator // nil without Options.ClientAuth
	lock    *dirLock
	ns      *server.Server
	nc      *nats.Conn
	js      jetstream.JetStream
	acks    *acks // the publishes awaiting the stream's answer
	stream  jetstream.Stream
	epoch   uint64
	replays chan struct{}
	states  singleflight.Group // State's requests in flight
	// resends: the stream can lose its leader with a publish unacknowledged (it is
	// clustered, or elsewhere), so Publish sends an unanswered attempt again.
	resends bool

	serverLog *serverLogger // the embedded server's logger; nil without one

	closeOnce sync.Once
	closed    chan struct{}
	ncClosed  chan struct{}
}

// New locks the store, starts the embedded server with JetStream, connects to it in
// process and creates (or updates) the stream. It returns a ready Bus, or an error that says
// what failed; nothing is left running on error.
func New(opts Options) (*Bus, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts.derive()
	b := &Bus{
		opts:     opts,
		log:      opts.Logger,
		replays:  make(chan struct{}, opts.MaxReplays),
		acks:     newAcks(),
		closed:   make(chan struct{}),
		ncClosed: make(chan struct{}),
		resends:  !opts.embedsJetStream() || opts.Cluster.enabled(),
	}
	if opts.embedsJetStream() {
		lock, err := lockDir(opts.StoreDir)
		if err != nil {
			return nil, err
		}
		b.lock = lock
	}
	if err := b.start(); err != nil {
		b.shutdown()
		return nil, err
	}
	return b, nil
}

func (b *Bus) start() error {
	var connect []nats.Option
	url := strings.Join(b.opts.URLs, ",")
	if len(b.opts.URLs) == 0 {
		if err := b.startServer(); err != nil {
			return err
		}
		connect = append(connect, nats.InProcessServer(b.ns), nats.CustomInboxPrefix(gatewayInboxPrefix))
		if b.auth != nil {
			connect = append(connect, nats.Token(string(b.auth.own)))
		}
	} else {
		connect = append(connect, b.opts.Credentials.natsOptions()...)
	}
	nc, err := nats.Connect(url, append(connect,
		nats.Name("natsse-gateway "+b.opts.ServerName),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250*time.Millisecond),
		nats.ClosedHandler(func(*nats.Conn) { close(b.ncClosed) }),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			// The answers to the publishes in flight may be lost with the connection.
			b.acks.failAll(nats.ErrDisconnected)
			if err != nil {
				b.log.Warn("NATS connection lost; reconnecting", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { b.log.Info("NATS connection restored", "url", nc.ConnectedUrlRedacted()) }),
	)...)
	if err != nil && len(b.opts.URLs) > 0 {
		return fmt.Errorf("%w %s: %w", ErrConnect, redactURLs(b.opts.URLs), err)
	}
	if err != nil {
		return fmt.Errorf("natsbus: connect to NATS: %w", err)
	}
	b.nc = nc
	if err := b.acks.listen(nc); err != nil {
		return fmt.Errorf("natsbus: subscribe to publish acknowledgements: %w", err)
	}
	var js jetstream.JetStream
	if b.opts.JetStreamDomain != "" {
		js, err = jetstream.NewWithDomain(nc, b.opts.JetStreamDomain)
	} else {
		js, err = jetstream.New(nc)
	}
	if err != nil {
		return fmt.Errorf("natsbus: jetstream: %w", err)
	}
	b.js = js
	ctx, cancel := context.WithTimeout(context.Background(), b.opts.StartTimeout)
	defer cancel()
	if err := b.ensureStream(ctx); err != nil {
		return err
	}
	if b.serverLog != nil {
		b.serverLog.setServing()
	}
	return nil
}

func (b *Bus) ensureStream(ctx context.Context) error {
	cfg := jetstream.StreamConfig{
		Name:        b.opts.Stream,
		Description: "natsse events",
		Subjects:    []string{b.opts.SubjectPrefix + ".>"},
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		Storage:     jetstream.FileStorage,
		MaxAge:      b.opts.MaxAge,
		MaxBytes:    orUnlimited(b.opts.MaxBytes),
		MaxMsgs:     orUnlimited(b.opts.MaxMsgs),
		Duplicates:  b.opts.DuplicateWindow,
		Replicas:    b.opts.Replicas,
		AllowDirect: true,
	}
	var err error
	// JetStream answers "temporarily unavailable" for a moment after start, and a clustered
	// stream cannot be placed until enough nodes are up: retry until StartTimeout.
	lastLog := time.Now()
	for {
		// Bound each attempt: a request sent before the cluster has a meta leader is not
		// answered at all.
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		b.stream, err = b.js.CreateOrUpdateStream(actx, cfg)
		cancel()
		if err == nil || ctx.Err() != nil {
			break
		}
		if b.serverLog != nil {
			if msg := b.serverLog.leafRefused(); msg != "" {
				return fmt.Errorf("%w: %s", ErrLeafRefused, msg)
			}
		}
		if time.Since(lastLog) > 5*time.Second {
			b.log.Info("waiting for JetStream to create the stream", "stream", cfg.Name, "replicas", cfg.Replicas, "err", err)
			lastLog = time.Now()
		}
		select {
		case <-ctx.Done():
		case <-time.After(250 * time.Millisecond):
		}
	}
	if err != nil {
		return fmt.Errorf("natsbus: create stream %s: %w", cfg.Name, err)
	}
	// A new replicated stream elects its leader a moment later: wait for it, so that the
	// Bus returned can serve.
	for {
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err = b.info(actx)
		cancel()
		if err == nil || ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
	if err != nil {
		return fmt.Errorf("natsbus: stream %s: %w", cfg.Name, err)
	}
	info := b.stream.CachedInfo()
	b.epoch = uint64(info.Created.UnixNano())
	return nil
}

func orUnlimited(n int64) int64 {
	if n <= 0 {
		return -1
	}
	return n
}

func splitHostPort(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("bad port %q", p)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	if host == "" {
		host = "0.0.0.0"
	}
	return host, port, nil
}

// Epoch identifies the stream's incarnation: its creation time in nanoseconds. A stream
// that is deleted and created again restarts its sequences at 1 under a new epoch.
func (b *Bus) Epoch() uint64 { return b.epoch }

// Prefix returns the subject prefix.
func (b *Bus) Prefix() string { return b.opts.SubjectPrefix }

// Subject returns the subject of a topic (or of a topic filter).
func (b *Bus) Subject(topic string) string { return b.opts.SubjectPrefix + "." + topic }

// ClientURL returns the URL NATS clients connect to, or "" when there is no listener.
func (b *Bus) ClientURL() string {
	if b.ns == nil || b.opts.ClientAddr == "" {
		return ""
	}
	return b.ns.ClientURL()
}

// info asks for the stream's info. A replicated stream without a leader (no quorum) is
// unavailable, although a replica may still answer.
func (b *Bus) info(ctx context.Context) (*jetstream.StreamInfo, error) {
	info, err := b.stream.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if info.Cluster != nil && info.Cluster.Leader == "" {
		return nil, fmt.Errorf("%w: the stream has no leader (no quorum)", ErrUnavailable)
	}
	return info, nil
}

// Consumers returns the number of consumers on the stream: the feeds and the replays
// running, and any left behind.
func (b *Bus) Consumers(ctx context.Context) (int, error) {
	info, err := b.stream.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return info.State.Consumers, nil
}

// closing reports whether Close has begun, or the connection closed for good.
func (b *Bus) closing() bool {
	select {
	case <-b.closed:
		return true
	default:
		return b.nc.IsClosed()
	}
}

// Close drains the connection, shuts the embedded server down and releases the store. It
// blocks until all of that is done; Feeds should be closed first. Close is idempotent.
func (b *Bus) Close() error {
	b.closeOnce.Do(b.shutdown)
	return nil
}

func (b *Bus) shutdown() {
	select {
	case <-b.closed:
		return
	default:
	}
	close(b.closed)
	if b.nc != nil {
		if err := b.nc.Drain(); err == nil {
			select {
			case <-b.ncClosed:
			case <-time.After(10 * time.Second):
				b.log.Warn("nats connection drain timed out")
				b.nc.Close()
			}
		} else {
			b.nc.Close()
		}
	}
	if b.ns != nil {
		b.ns.Shutdown()
		b.ns.WaitForShutdown()
	}
	if b.lock != nil {
		b.lock.release()
	}
}

// redactURLs joins urls with the passwords in them replaced by "xxxxx".
func redactURLs(urls []string) string {
	out := make([]string, len(urls))
	for i, s := range urls {
		out[i] = s
		if u, err := url.Parse(strings.TrimSpace(s)); err == nil {
			out[i] = u.Redacted()
		}
	}
	return strings.Join(out, ",")
}
