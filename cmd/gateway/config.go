package main

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/kelseyhightower/envconfig"
	"github.com/natsse/natsse/auth"
	"github.com/natsse/natsse/gateway"
	"github.com/natsse/natsse/natsbus"
)

// envPrefix prefixes every environment variable the gateway reads.
const envPrefix = "GATEWAY"

// config is the gateway's configuration, read from GATEWAY_* environment variables. A
// variable that is not set keeps its value in defaultConfig.
type config struct {
	HTTPAddr        string        `envconfig:"HTTP_ADDR" desc:"HTTP listen address (SSE streams, publishes, health)"`
	TLSCertFile     string        `envconfig:"TLS_CERT_FILE" desc:"serve HTTPS (HTTP/2 and HTTP/1.1) with this PEM certificate (chain); re-read when it changes or on SIGHUP"`
	TLSKeyFile      string        `envconfig:"TLS_KEY_FILE" desc:"the PEM private key of GATEWAY_TLS_CERT_FILE"`
	H2C             bool          `envconfig:"H2C" desc:"serve cleartext HTTP/2 (prior knowledge) besides HTTP/1.1, for a proxy in front"`
	MetricsAddr     string        `envconfig:"METRICS_ADDR" desc:"serve GET /metrics (Prometheus) on this address only, instead of on the HTTP port"`
	NATSAddr        string        `envconfig:"NATS_ADDR" desc:"the embedded NATS server's client listener, for microservices; 'off' for none (in-process only)"`
	DataDir         string        `envconfig:"DATA_DIR" desc:"JetStream storage; locked while the gateway runs"`
	SubjectPrefix   string        `envconfig:"SUBJECT_PREFIX" desc:"topic 'orders.eu' is NATS subject '<prefix>.orders.eu'; the stream captures '<prefix>.>'"`
	Stream          string        `envconfig:"STREAM" desc:"name of the JetStream stream"`
	HistoryMaxAge   time.Duration `envconfig:"HISTORY_MAX_AGE" desc:"events older than this are removed; 0 keeps them forever"`
	HistoryMaxBytes int64         `envconfig:"HISTORY_MAX_BYTES" desc:"the stream's size limit in bytes (oldest events go first); 0 for none"`
	HistoryMaxMsgs  int64         `envconfig:"HISTORY_MAX_MSGS" desc:"the stream's limit in events (oldest go first); 0 for none"`
	DuplicateWindow time.Duration `envconfig:"DUPLICATE_WINDOW" desc:"how long an Idempotency-Key or Nats-Msg-Id is remembered"`
	Fsync           string        `envconfig:"FSYNC" desc:"how often stored events are fsynced to disk, or 'always' for every write"`
	KeepAlive       time.Duration `envconfig:"KEEPALIVE" desc:"interval of the keep-alive comment on streams"`
	Retry           time.Duration `envconfig:"RETRY" desc:"reconnection delay sent to clients (the SSE retry field)"`
	BufferSize      int           `envconfig:"BUFFER_SIZE" desc:"events queued per stream before a slow client is cut off"`
	RecentEvents    int           `envconfig:"RECENT_EVENTS" desc:"recent events kept in memory for fast resumes; 0 for none"`
	MaxEventBytes   int           `envconfig:"MAX_EVENT_BYTES" desc:"largest encoded SSE event an HTTP publish may produce"`
	MaxTopics       int           `envconfig:"MAX_TOPICS" desc:"most topics in one stream"`
	WriteTimeout    time.Duration `envconfig:"WRITE_TIMEOUT" desc:"a stream whose client takes no bytes for this long is cut off"`
	CORSOrigins     []string      `envconfig:"CORS_ORIGINS" desc:"comma-separated origins allowed from browsers on other origins, or '*'"`
	UI              bool          `envconfig:"UI" desc:"serve a page to try the gateway from a browser at GET /"`
	PresenceWait    time.Duration `envconfig:"PRESENCE_WAIT" desc:"longest wait of GET /presence for the other gateways' answers (an embedded cluster stops once all have answered); 10ms to 10s"`
	MaxStreams      int           `envconfig:"MAX_STREAMS" desc:"most open streams on this gateway; 0 for no cap"`
	MaxStreamsPer   int           `envconfig:"MAX_STREAMS_PER_CLIENT" desc:"most open streams of one client (token sub, else IP); 0 for no cap"`
	PublishRate     float64       `envconfig:"PUBLISH_RATE" desc:"HTTP publishes per second per client (token sub, else IP); 0 for no limit"`
	PublishBurst    int           `envconfig:"PUBLISH_BURST" desc:"the bursts GATEWAY_PUBLISH_RATE allows"`
	TrustedProxies  []string      `envconfig:"TRUSTED_PROXIES" desc:"comma-separated CIDRs of proxies whose X-Forwarded-For names the client"`
	AuthSecret      string        `envconfig:"AUTH_SECRET" desc:"turns auth on: the HMAC key of tokens (HS256/384/512), at least 32 bytes"`
	AuthPublicKey   string        `envconfig:"AUTH_PUBLIC_KEY_FILE" desc:"turns auth on: a PEM public key file (RS*, PS*, ES*, EdDSA tokens)"`
	AuthJWKSURL     string        `envconfig:"AUTH_JWKS_URL" desc:"turns auth on: a JWKS endpoint whose keys sign tokens"`
	AuthIssuer      string        `envconfig:"AUTH_ISSUER" desc:"the iss that tokens must carry"`
	AuthAudience    string        `envconfig:"AUTH_AUDIENCE" desc:"an aud that tokens must carry"`
	AuthAnonymous   []string      `envconfig:"AUTH_ANONYMOUS" desc:"comma-separated topic filters that streams without a token may subscribe to"`
	AuthCookie      string        `envconfig:"AUTH_COOKIE" desc:"the cookie that may carry a stream's token"`
	ServerName      string        `envconfig:"SERVER_NAME" desc:"the embedded NATS server's name: unique and stable per node in a cluster (empty: natsse, or a unique name for a leaf node)"`
	ClusterName     string        `envconfig:"CLUSTER_NAME" desc:"embedded cluster: the cluster's name, the same on every node"`
	ClusterAddr     string        `envconfig:"CLUSTER_ADDR" desc:"embedded cluster: this node's route listener, e.g. 0.0.0.0:6222"`
	ClusterRoutes   []string      `envconfig:"CLUSTER_ROUTES" desc:"embedded cluster: comma-separated nats://host:port routes of all nodes"`
	ClusterUser     string        `envconfig:"CLUSTER_USER" desc:"embedded cluster: the user every node presents on its routes and requires (required with auth on)"`
	ClusterPassword string        `envconfig:"CLUSTER_PASSWORD" desc:"embedded cluster: the routes' password, the same on every node"`
	ClusterTLSCert  string        `envconfig:"CLUSTER_TLS_CERT_FILE" desc:"embedded cluster: this node's PEM certificate for TLS on the routes"`
	ClusterTLSKey   string        `envconfig:"CLUSTER_TLS_KEY_FILE" desc:"embedded cluster: the key of GATEWAY_CLUSTER_TLS_CERT_FILE"`
	ClusterTLSCA    string        `envconfig:"CLUSTER_TLS_CA_FILE" desc:"embedded cluster: the PEM CA that signs every node's route certificate"`
	StreamReplicas  int           `envconfig:"STREAM_REPLICAS" desc:"the stream's replicas: 1, or 3 in a three-node cluster"`
	NATSURL         []string      `envconfig:"NATS_URL" desc:"external NATS: comma-separated URLs of an existing deployment with JetStream; no embedded server"`
	NATSCreds       string        `envconfig:"NATS_CREDS" desc:"a .creds file for GATEWAY_NATS_URL or GATEWAY_LEAF_REMOTES"`
	NATSUser        string        `envconfig:"NATS_USER" desc:"user name for GATEWAY_NATS_URL"`
	NATSPassword    string        `envconfig:"NATS_PASSWORD" desc:"password for GATEWAY_NATS_URL"`
	NATSToken       string        `envconfig:"NATS_TOKEN" desc:"token for GATEWAY_NATS_URL"`
	LeafRemotes     []string      `envconfig:"LEAF_REMOTES" desc:"leaf node: comma-separated leaf node URLs of an existing deployment to join"`
	JSDomain        string        `envconfig:"JS_DOMAIN" desc:"the JetStream domain holding the stream (required with GATEWAY_LEAF_REMOTES)"`
	ShutdownTimeout time.Duration `envconfig:"SHUTDOWN_TIMEOUT" desc:"longest wait for a graceful shutdown"`
	LogLevel        string        `envconfig:"LOG_LEVEL" desc:"debug, info, warn or error"`
	LogFormat       string        `envconfig:"LOG_FORMAT" desc:"text or json"`
}

// defaultConfig is the configuration when no variable is set: the options' defaults of
// the packages that own them, and the program's own.
func defaultConfig() config {
	b, g := natsbus.DefaultOptions(), gateway.DefaultOptions()
	return config{
		HTTPAddr:        ":8080",
		NATSAddr:        "127.0.0.1:4222",
		DataDir:         "./data",
		SubjectPrefix:   b.SubjectPrefix,
		Stream:          b.Stream,
		HistoryMaxAge:   b.MaxAge,
		HistoryMaxBytes: b.MaxBytes,
		HistoryMaxMsgs:  b.MaxMsgs,
		DuplicateWindow: b.DuplicateWindow,
		Fsync:           fsyncSetting(b.SyncInterval),
		KeepAlive:       g.KeepAlive,
		Retry:           g.Retry,
		BufferSize:      g.BufferSize,
		RecentEvents:    g.RecentEvents,
		MaxEventBytes:   g.MaxEventBytes,
		MaxTopics:       g.MaxTopics,
		WriteTimeout:    g.WriteTimeout,
		PresenceWait:    g.PresenceWait,
		AuthCookie:      g.AuthCookie,
		UI:              g.UI,
		MaxStreams:      g.MaxStreams,
		MaxStreamsPer:   g.MaxStreamsPerClient,
		PublishRate:     g.PublishRate,
		PublishBurst:    g.PublishBurst,
		StreamReplicas:  b.Replicas,
		ShutdownTimeout: 10 * time.Second,
		LogLevel:        "info",
		LogFormat:       "text",
	}
}

// loadConfig reads the configuration and checks it.
func loadConfig() (config, error) {
	c := defaultConfig()
	if err := envconfig.Process(envPrefix, &c); err != nil {
		var perr *envconfig.ParseError
		if errors.As(err, &perr) {
			return c, fmt.Errorf("configuration: %s=%q: not a valid %s", perr.KeyName, perr.Value, perr.TypeName)
		}
		return c, fmt.Errorf("configuration: %w", err)
	}
	return c, c.validate()
}

// optionVars names the variable that sets each option of natsbus and gateway, for their
// errors.
var optionVars = map[string]string{
	"StoreDir": "DATA_DIR", "ClientAddr": "NATS_ADDR", "ServerName": "SERVER_NAME",
	"SubjectPrefix": "SUBJECT_PREFIX", "Stream": "STREAM", "MaxAge": "HISTORY_MAX_AGE",
	"MaxBytes": "HISTORY_MAX_BYTES", "MaxMsgs": "HISTORY_MAX_MSGS", "DuplicateWindow": "DUPLICATE_WINDOW",
	"SyncInterval": "FSYNC", "Cluster": "CLUSTER_NAME/ADDR/ROUTES", "Cluster.User": "CLUSTER_USER", "Cluster.TLSCert": "CLUSTER_TLS_CERT_FILE", "Replicas": "STREAM_REPLICAS",
	"URLs": "NATS_URL", "LeafRemotes": "LEAF_REMOTES", "JetStreamDomain": "JS_DOMAIN", "Credentials": "NATS_CREDS/USER/PASSWORD/TOKEN",
	"Secret": "AUTH_SECRET", "PublicKeyPEM": "AUTH_PUBLIC_KEY_FILE", "JWKSURL": "AUTH_JWKS_URL",
	"Issuer": "AUTH_ISSUER", "Audience": "AUTH_AUDIENCE", "Anonymous": "AUTH_ANONYMOUS", "AuthCookie": "AUTH_COOKIE",
	"MaxStreams": "MAX_STREAMS", "MaxStreamsPerClient": "MAX_STREAMS_PER_CLIENT", "PublishRate": "PUBLISH_RATE",
	"PublishBurst": "PUBLISH_BURST", "TrustedProxies": "TRUSTED_PROXIES", "ServeMetrics": "METRICS_ADDR",
	"KeepAlive": "KEEPALIVE", "Retry": "RETRY", "BufferSize": "BUFFER_SIZE", "RecentEvents": "RECENT_EVENTS",
	"MaxEventBytes": "MAX_EVENT_BYTES", "MaxTopics": "MAX_TOPICS", "WriteTimeout": "WRITE_TIMEOUT",
	"CORSOrigins": "CORS_ORIGINS", "UI": "UI", "PresenceWait": "PRESENCE_WAIT",
}

// validate checks the program's own variables here, and every other one with the package
// that owns its option, naming the variable in each error. All errors come on one line.
func (c config) validate() error {
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s_%s: "+format, append([]any{envPrefix, name}, args...)...))
	}
	if c.HTTPAddr == "" {
		bad("HTTP_ADDR", "empty")
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		bad("TLS_CERT_FILE", "set both the certificate and its key, or neither")
	}
	if c.H2C && c.TLSCertFile != "" {
		bad("H2C", "cleartext HTTP/2 excludes TLS (over TLS, HTTP/2 is on)")
	}
	_, fsyncErr := c.fsyncInterval()
	if fsyncErr != nil {
		bad("FSYNC", "%v", fsyncErr)
	}
	if _, err := c.trustedProxies(); err != nil {
		bad("TRUSTED_PROXIES", "%v", err)
	}
	if _, err := c.logLevel(); err != nil {
		bad("LOG_LEVEL", "%v", err)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		bad("LOG_FORMAT", "%q: want text or json", c.LogFormat)
	}
	aopts, err := c.authOptions(nil)
	if err != nil {
		errs = append(errs, err)
	}
	bopts := c.busOptions(nil)
	if aopts.Enabled() { // the rules of NATS clients with tokens apply; the check itself is set at start
		bopts.ClientAuth = func(string) (natsbus.ClientGrants, error) { return natsbus.ClientGrants{}, auth.ErrInvalidToken }
	}
	gopts := c.gatewayOptions(nil)
	if aopts.Enabled() {
		gopts.Auth = new(auth.Verifier) // so that the rules of auth apply; the real one is made at start
	}
	for _, err := range []error{bopts.Validate(), gopts.Validate(), aopts.Validate()} {
		for _, e := range unjoin(err) {
			var oe *natsbus.OptionError
			switch {
			case !errors.As(e, &oe):
				errs = append(errs, e)
			case oe.Option == "Bus": // not configured: the program makes it
			case oe.Option == "SyncInterval" && fsyncErr != nil: // said above
			case optionVars[oe.Option] == "": // not from the environment
				errs = append(errs, e)
			default:
				bad(optionVars[oe.Option], "%s", oe.Reason)
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("configuration: %s", strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	return nil
}

// unjoin returns the errors that errors.Join joined into err.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	if err != nil {
		return []error{err}
	}
	return nil
}

// busOptions maps the configuration onto natsbus.Options.
func (c config) busOptions(log *slog.Logger) natsbus.Options {
	fsync, _ := c.fsyncInterval()
	return natsbus.Options{
		StoreDir:        c.DataDir,
		ClientAddr:      c.natsAddr(),
		ServerName:      c.ServerName,
		SubjectPrefix:   c.SubjectPrefix,
		Stream:          c.Stream,
		MaxAge:          c.HistoryMaxAge,
		MaxBytes:        c.HistoryMaxBytes,
		MaxMsgs:         c.HistoryMaxMsgs,
		DuplicateWindow: c.DuplicateWindow,
		SyncInterval:    fsync,
		MaxReplays:      natsbus.DefaultOptions().MaxReplays,
		Logger:          log,
		Cluster: natsbus.ClusterOptions{Name: c.ClusterName, Addr: c.ClusterAddr, Routes: c.ClusterRoutes,
			User: c.ClusterUser, Password: c.ClusterPassword,
			TLSCert: c.ClusterTLSCert, TLSKey: c.ClusterTLSKey, TLSCA: c.ClusterTLSCA},
		Replicas:        c.StreamReplicas,
		URLs:            c.NATSURL,
		LeafRemotes:     c.LeafRemotes,
		Credentials:     natsbus.Credentials{File: c.NATSCreds, User: c.NATSUser, Password: c.NATSPassword, Token: c.NATSToken},
		JetStreamDomain: c.JSDomain,
	}
}

// gatewayOptions maps the configuration onto gateway.Options, all but Bus and Auth.
func (c config) gatewayOptions(log *slog.Logger) gateway.Options {
	d := gateway.DefaultOptions()
	proxies, _ := c.trustedProxies()
	return gateway.Options{
		Logger:              log,
		KeepAlive:           c.KeepAlive,
		Retry:               c.Retry,
		BufferSize:          c.BufferSize,
		RecentEvents:        c.RecentEvents,
		MaxEventBytes:       c.MaxEventBytes,
		MaxHeaderBytes:      d.MaxHeaderBytes,
		MaxTopics:           c.MaxTopics,
		WriteTimeout:        c.WriteTimeout,
		PublishTimeout:      d.PublishTimeout,
		MaxStreams:          c.MaxStreams,
		MaxStreamsPerClient: c.MaxStreamsPer,
		PublishRate:         c.PublishRate,
		PublishBurst:        c.PublishBurst,
		ServeMetrics:        c.MetricsAddr == "",
		TrustedProxies:      proxies,
		AuthCookie:          c.AuthCookie,
		CORSOrigins:         c.CORSOrigins,
		UI:                  c.UI,
		PresenceWait:        c.PresenceWait,
	}
}

// trustedProxies parses GATEWAY_TRUSTED_PROXIES: CIDRs, or single addresses.
func (c config) trustedProxies() ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range c.TrustedProxies {
		s = strings.TrimSpace(s)
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return nil, fmt.Errorf("%q: want a CIDR such as 10.0.0.0/8, or an address", s)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// authOptions maps the configuration onto auth.Options; it reads the public key file.
func (c config) authOptions(log *slog.Logger) (auth.Options, error) {
	o := auth.Options{
		Secret:    []byte(c.AuthSecret),
		JWKSURL:   c.AuthJWKSURL,
		Issuer:    c.AuthIssuer,
		Audience:  c.AuthAudience,
		Anonymous: c.AuthAnonymous,
		Logger:    log,
	}
	if c.AuthPublicKey != "" {
		pem, err := os.ReadFile(c.AuthPublicKey)
		if err != nil {
			return o, fmt.Errorf("%s_AUTH_PUBLIC_KEY_FILE: %w", envPrefix, err)
		}
		if len(bytes.TrimSpace(pem)) == 0 {
			return o, fmt.Errorf("%s_AUTH_PUBLIC_KEY_FILE: %s is empty", envPrefix, c.AuthPublicKey)
		}
		o.PublicKeyPEM = pem
	}
	return o, nil
}

// fsyncSetting is the value of GATEWAY_FSYNC that gives the sync interval d.
func fsyncSetting(d time.Duration) string {
	if d < 0 {
		return "always"
	}
	return showDefault(d)
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
