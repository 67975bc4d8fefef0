package main

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/kelseyhightower/envconfig"
)

// envPrefix prefixes every environment variable the gateway reads.
const envPrefix = "GATEWAY"

// config is the gateway's configuration, read from GATEWAY_* environment variables.
type config struct {
	HTTPAddr        string        `envconfig:"HTTP_ADDR" default:":8080" desc:"HTTP listen address (SSE streams, publishes, health)"`
	NATSAddr        string        `envconfig:"NATS_ADDR" default:"127.0.0.1:4222" desc:"the embedded NATS server's client listener, for microservices; 'off' for none (in-process only)"`
	DataDir         string        `envconfig:"DATA_DIR" default:"./data" desc:"JetStream storage; locked while the gateway runs"`
	SubjectPrefix   string        `envconfig:"SUBJECT_PREFIX" default:"sse" desc:"topic 'orders.eu' is NATS subject '<prefix>.orders.eu'; the stream captures '<prefix>.>'"`
	Stream          string        `envconfig:"STREAM" default:"NATSSE" desc:"name of the JetStream stream"`
	HistoryMaxAge   time.Duration `envconfig:"HISTORY_MAX_AGE" default:"24h" desc:"events older than this are removed; 0 keeps them forever"`
	HistoryMaxBytes int64         `envconfig:"HISTORY_MAX_BYTES" default:"1073741824" desc:"the stream's size limit in bytes (oldest events go first); 0 for none"`
	HistoryMaxMsgs  int64         `envconfig:"HISTORY_MAX_MSGS" default:"0" desc:"the stream's limit in events (oldest go first); 0 for none"`
	DuplicateWindow time.Duration `envconfig:"DUPLICATE_WINDOW" default:"2m" desc:"how long an Idempotency-Key or Nats-Msg-Id is remembered"`
	Fsync           string        `envconfig:"FSYNC" default:"2m" desc:"how often stored events are fsynced to disk, or 'always' for every write"`
	KeepAlive       time.Duration `envconfig:"KEEPALIVE" default:"15s" desc:"interval of the keep-alive comment on streams"`
	Retry           time.Duration `envconfig:"RETRY" default:"3s" desc:"reconnection delay sent to clients (the SSE retry field)"`
	BufferSize      int           `envconfig:"BUFFER_SIZE" default:"512" desc:"events queued per stream before a slow client is cut off"`
	RecentEvents    int           `envconfig:"RECENT_EVENTS" default:"4096" desc:"recent events kept in memory for fast resumes; 0 for none"`
	MaxEventBytes   int           `envconfig:"MAX_EVENT_BYTES" default:"65536" desc:"largest encoded SSE event an HTTP publish may produce"`
	MaxTopics       int           `envconfig:"MAX_TOPICS" default:"32" desc:"most topics in one stream"`
	WriteTimeout    time.Duration `envconfig:"WRITE_TIMEOUT" default:"10s" desc:"a stream whose client takes no bytes for this long is cut off"`
	CORSOrigins     []string      `envconfig:"CORS_ORIGINS" desc:"comma-separated origins allowed from browsers on other origins, or '*'"`
	ShutdownTimeout time.Duration `envconfig:"SHUTDOWN_TIMEOUT" default:"10s" desc:"longest wait for a graceful shutdown"`
	LogLevel        string        `envconfig:"LOG_LEVEL" default:"info" desc:"debug, info, warn or error"`
	LogFormat       string        `envconfig:"LOG_FORMAT" default:"text" desc:"text or json"`
}

// loadConfig reads and checks the configuration.
func loadConfig() (config, error) {
	var c config
	if err := envconfig.Process(envPrefix, &c); err != nil {
		var perr *envconfig.ParseError
		if errors.As(err, &perr) {
			return c, fmt.Errorf("configuration: %s=%q: not a valid %s", perr.KeyName, perr.Value, perr.TypeName)
		}
		return c, fmt.Errorf("configuration: %w", err)
	}
	return c, c.validate()
}

func (c config) validate() error {
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s_%s: "+format, append([]any{envPrefix, name}, args...)...))
	}
	if c.HTTPAddr == "" {
		bad("HTTP_ADDR", "empty")
	}
	if c.DataDir == "" {
		bad("DATA_DIR", "empty")
	}
	if c.HistoryMaxAge < 0 {
		bad("HISTORY_MAX_AGE", "negative")
	}
	if c.HistoryMaxBytes < 0 || c.HistoryMaxMsgs < 0 {
		bad("HISTORY_MAX_BYTES/MSGS", "negative")
	}
	if c.DuplicateWindow <= 0 {
		bad("DUPLICATE_WINDOW", "must be positive")
	}
	if _, err := c.fsyncInterval(); err != nil {
		bad("FSYNC", "%v", err)
	}
	if c.KeepAlive < time.Second {
		bad("KEEPALIVE", "%s: at least 1s", c.KeepAlive)
	}
	if c.Retry < 100*time.Millisecond {
		bad("RETRY", "%s: at least 100ms (a tiny retry makes browsers reconnect in a tight loop)", c.Retry)
	}
	if c.BufferSize < 1 {
		bad("BUFFER_SIZE", "at least 1")
	}
	if c.RecentEvents < 0 {
		bad("RECENT_EVENTS", "negative")
	}
	if c.MaxEventBytes < 256 {
		bad("MAX_EVENT_BYTES", "at least 256")
	}
	if c.MaxTopics < 1 {
		bad("MAX_TOPICS", "at least 1")
	}
	if c.WriteTimeout < 100*time.Millisecond {
		bad("WRITE_TIMEOUT", "at least 100ms")
	}
	if _, err := c.logLevel(); err != nil {
		bad("LOG_LEVEL", "%v", err)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		bad("LOG_FORMAT", "%q: want text or json", c.LogFormat)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("configuration: %s", strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	return nil
}

// fsyncInterval maps GATEWAY_FSYNC to natsbus.Options.SyncInterval: negative for always.
func (c config) fsyncInterval() (time.Duration, error) {
	if c.Fsync == "always" {
		return -1, nil
	}
	d, err := time.ParseDuration(c.Fsync)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%q: want a positive duration such as 2m, or always", c.Fsync)
	}
	return d, nil
}

func (c config) logLevel() (slog.Level, error) {
	var l slog.Level
	err := l.UnmarshalText([]byte(c.LogLevel))
	return l, err
}

// natsAddr is the embedded server's client listener, "" for none.
func (c config) natsAddr() string {
	if strings.EqualFold(c.NATSAddr, "off") {
		return ""
	}
	return c.NATSAddr
}
