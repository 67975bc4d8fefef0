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
	ServerName      string        `envconfig:"SERVER_NAME" desc:"the embedded NATS server's name: unique and stable per node in a cluster (default natsse)"`
	ClusterName     string        `envconfig:"CLUSTER_NAME" desc:"embedded cluster: the cluster's name, the same on every node"`
	ClusterAddr     string        `envconfig:"CLUSTER_ADDR" desc:"embedded cluster: this node's route listener, e.g. 0.0.0.0:6222"`
	ClusterRoutes   []string      `envconfig:"CLUSTER_ROUTES" desc:"embedded cluster: comma-separated nats://host:port routes of all nodes"`
	StreamReplicas  int           `envconfig:"STREAM_REPLICAS" default:"1" desc:"the stream's replicas: 1, or 3 in a three-node cluster"`
	NATSURL         []string      `envconfig:"NATS_URL" desc:"external NATS: comma-separated URLs of an existing deployment with JetStream; no embedded server"`
	NATSCreds       string        `envconfig:"NATS_CREDS" desc:"a .creds file for GATEWAY_NATS_URL or GATEWAY_LEAF_REMOTES"`
	NATSUser        string        `envconfig:"NATS_USER" desc:"user name for GATEWAY_NATS_URL"`
	NATSPassword    string        `envconfig:"NATS_PASSWORD" desc:"password for GATEWAY_NATS_URL"`
	NATSToken       string        `envconfig:"NATS_TOKEN" desc:"token for GATEWAY_NATS_URL"`
	LeafRemotes     []string      `envconfig:"LEAF_REMOTES" desc:"leaf node: comma-separated leaf node URLs of an existing deployment to join"`
	JSDomain        string        `envconfig:"JS_DOMAIN" desc:"the JetStream domain holding the stream (required with GATEWAY_LEAF_REMOTES)"`
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
	clustered := c.ClusterName != "" || c.ClusterAddr != "" || len(c.ClusterRoutes) > 0
	switch {
	case len(c.NATSURL) > 0 && (clustered || len(c.LeafRemotes) > 0):
		bad("NATS_URL", "an external deployment excludes GATEWAY_CLUSTER_* and GATEWAY_LEAF_REMOTES")
	case len(c.LeafRemotes) > 0 && clustered:
		bad("LEAF_REMOTES", "a leaf node excludes GATEWAY_CLUSTER_*")
	case len(c.LeafRemotes) > 0 && c.JSDomain == "":
		bad("JS_DOMAIN", "required with GATEWAY_LEAF_REMOTES: the JetStream domain of the deployment joined")
	case clustered && (c.ClusterName == "" || c.ClusterAddr == "" || len(c.ClusterRoutes) == 0):
		bad("CLUSTER_NAME/ADDR/ROUTES", "a cluster node needs all three")
	case clustered && c.ServerName == "":
		bad("SERVER_NAME", "required in a cluster: a unique, stable name per node")
	}
	if c.StreamReplicas < 1 || c.StreamReplicas > 5 {
		bad("STREAM_REPLICAS", "%d: from 1 to 5", c.StreamReplicas)
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
	if strings.EqualFold(c.NATSAddr, "off") || len(c.NATSURL) > 0 {
		return ""
	}
	return c.NATSAddr
}
