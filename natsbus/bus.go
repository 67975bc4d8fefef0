package natsbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Errors returned by the Bus.
var (
	ErrClosed        = errors.New("natsbus: closed")
	ErrDataDirLocked = errors.New("natsbus: data dir locked")
	ErrUnavailable   = errors.New("natsbus: stream unavailable")
	ErrListen        = errors.New("natsbus: cannot listen for NATS clients on")
)

// Options configure a Bus. The zero value of each field is its documented default, except
// StoreDir, which is required.
type Options struct {
	// StoreDir holds JetStream's files. It is locked exclusively while the Bus runs.
	StoreDir string
	// ClientAddr is the embedded server's client listener for NATS clients, "host:port";
	// port 0 picks a free port. Empty: no listener, in-process clients only.
	ClientAddr string
	// ServerName names the embedded server. Default: "natsse".
	ServerName string
	// SubjectPrefix is the first token of every subject the stream captures. Default "sse".
	SubjectPrefix string
	// Stream is the JetStream stream's name. Default "NATSSE".
	Stream string
	// MaxAge, MaxBytes and MaxMsgs bound the stream's history; zero means unlimited.
	MaxAge   time.Duration
	MaxBytes int64
	MaxMsgs  int64
	// DuplicateWindow is how long a Nats-Msg-Id is remembered. Default 2 minutes, at most MaxAge.
	DuplicateWindow time.Duration
	// SyncInterval is how often the store is fsynced; 0 keeps nats-server's default (2m),
	// a negative value fsyncs every write.
	SyncInterval time.Duration
	// MaxReplays bounds the replays from the store running at once. Default 16.
	MaxReplays int
	// StartTimeout bounds the embedded server's start. Default 30s.
	StartTimeout time.Duration
	// Logger receives the Bus's and the server's logs. Nil discards them.
	Logger *slog.Logger
}

func (o *Options) setDefaults() error {
	if o.StoreDir == "" {
		return errors.New("natsbus: StoreDir is required")
	}
	if o.ServerName == "" {
		o.ServerName = "natsse"
	}
	if o.SubjectPrefix == "" {
		o.SubjectPrefix = "sse"
	}
	if err := ValidateTopic(o.SubjectPrefix); err != nil {
		return fmt.Errorf("natsbus: subject prefix: %w", err)
	}
	if o.Stream == "" {
		o.Stream = "NATSSE"
	}
	if o.DuplicateWindow == 0 {
		o.DuplicateWindow = 2 * time.Minute
	}
	if o.MaxAge > 0 && o.DuplicateWindow > o.MaxAge {
		o.DuplicateWindow = o.MaxAge
	}
	if o.MaxReplays <= 0 {
		o.MaxReplays = 16
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = 30 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Bus is a running NATS server with the gateway's stream, and a connection to it.
type Bus struct {
	opts    Options
	log     *slog.Logger
	lock    *dirLock
	ns      *server.Server
	nc      *nats.Conn
	js      jetstream.JetStream
	stream  jetstream.Stream
	epoch   uint64
	replays chan struct{}

	closeOnce sync.Once
	closed    chan struct{}
	ncClosed  chan struct{}
}

// New locks the store, starts the embedded server with JetStream, connects to it in
// process and creates (or updates) the stream. It returns a ready Bus, or an error that says
// what failed; nothing is left running on error.
func New(opts Options) (*Bus, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	b := &Bus{
		opts:     opts,
		log:      opts.Logger,
		replays:  make(chan struct{}, opts.MaxReplays),
		closed:   make(chan struct{}),
		ncClosed: make(chan struct{}),
	}
	lock, err := lockDir(opts.StoreDir)
	if err != nil {
		return nil, err
	}
	b.lock = lock
	if err := b.start(); err != nil {
		b.shutdown()
		return nil, err
	}
	return b, nil
}

func (b *Bus) start() error {
	sopts := &server.Options{
		ServerName:             b.opts.ServerName,
		JetStream:              true,
		StoreDir:               b.opts.StoreDir,
		NoSigs:                 true,
		DisableJetStreamBanner: true,
		SyncInterval:           b.opts.SyncInterval,
	}
	if b.opts.SyncInterval < 0 {
		sopts.SyncInterval = 0
		sopts.SyncAlways = true
	}
	if b.opts.ClientAddr == "" {
		sopts.DontListen = true
	} else {
		host, port, err := splitHostPort(b.opts.ClientAddr)
		if err != nil {
			return fmt.Errorf("natsbus: client address %q: %w", b.opts.ClientAddr, err)
		}
		sopts.Host, sopts.Port = host, port
	}
	ns, err := server.NewServer(sopts)
	if err != nil {
		return fmt.Errorf("natsbus: configure server: %w", err)
	}
	logger := &serverLogger{log: b.log}
	ns.SetLoggerV2(logger, false, false, false)
	b.ns = ns
	ns.Start()
	// A failed listen is reported through the logger's Fatalf, not by Start: watch for it
	// rather than wait for the whole timeout.
	deadline := time.Now().Add(b.opts.StartTimeout)
	for !ns.ReadyForConnections(50 * time.Millisecond) {
		if msg := logger.fatalMessage(); msg != "" {
			return fmt.Errorf("%w %s: %s", ErrListen, b.opts.ClientAddr, msg)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("natsbus: server not ready after %s", b.opts.StartTimeout)
		}
	}
	logger.setStarted()
	nc, err := nats.Connect("",
		nats.InProcessServer(ns),
		nats.Name("natsse-gateway"),
		nats.MaxReconnects(-1),
		nats.ClosedHandler(func(*nats.Conn) { close(b.ncClosed) }),
	)
	if err != nil {
		return fmt.Errorf("natsbus: connect in process: %w", err)
	}
	b.nc = nc
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("natsbus: jetstream: %w", err)
	}
	b.js = js
	ctx, cancel := context.WithTimeout(context.Background(), b.opts.StartTimeout)
	defer cancel()
	return b.ensureStream(ctx)
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
		Replicas:    1,
		AllowDirect: true,
	}
	var err error
	// JetStream may answer "temporarily unavailable" for a moment after start.
	for {
		b.stream, err = b.js.CreateOrUpdateStream(ctx, cfg)
		if err == nil || ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
	if err != nil {
		return fmt.Errorf("natsbus: create stream %s: %w", cfg.Name, err)
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
	if b.opts.ClientAddr == "" {
		return ""
	}
	return b.ns.ClientURL()
}

// State returns the first and last sequence stored in the stream. An empty stream has
// first = last+1.
func (b *Bus) State(ctx context.Context) (first, last uint64, err error) {
	info, err := b.stream.Info(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	first, last = info.State.FirstSeq, info.State.LastSeq
	if first == 0 {
		first = last + 1
	}
	return first, last, nil
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

// Ready reports whether the server, the connection and the stream can serve.
func (b *Bus) Ready(ctx context.Context) error {
	select {
	case <-b.closed:
		return ErrClosed
	default:
	}
	if !b.nc.IsConnected() {
		return fmt.Errorf("%w: not connected", ErrUnavailable)
	}
	if _, err := b.stream.Info(ctx); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return nil
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
