package gateway

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"time"

	"github.com/natsse/natsse/auth"
	"github.com/natsse/natsse/natsbus"
)

// Options configure a Gateway. Start from DefaultOptions: New uses every field as it is
// given and refuses a value it cannot use.
type Options struct {
	// Bus stores and follows the events. Required; the Gateway does not close it.
	Bus *natsbus.Bus
	// Logger receives the Gateway's logs. Nil discards them.
	Logger *slog.Logger
	// KeepAlive is the interval of the keep-alive comment on idle streams; at least 1s.
	KeepAlive time.Duration
	// Retry is the reconnection delay sent to clients once per stream; at least 100ms, as
	// browsers reconnect in a tight loop after a tiny one.
	Retry time.Duration
	// BufferSize is the number of events queued per connection; a connection whose queue is
	// full leaves the live path and catches up from the stream at its client's pace.
	BufferSize int
	// RecentEvents is the number of recent events kept in memory to serve resuming clients
	// without reading the stream; 0 keeps none.
	RecentEvents int
	// MaxEventBytes bounds an HTTP publish: the encoded SSE event (id, event and data lines)
	// may not exceed it. At least 256.
	MaxEventBytes int
	// MaxHeaderBytes bounds a request's line and headers; larger requests get 431.
	MaxHeaderBytes int
	// MaxTopics bounds the topics of one stream.
	MaxTopics int
	// WriteTimeout bounds every write to a stream: a client that does not take the bytes in
	// time is cut off. At least 100ms.
	WriteTimeout time.Duration
	// PublishTimeout bounds the wait for the stream's acknowledgement.
	PublishTimeout time.Duration
	// MaxStreams caps the open streams of the Gateway; 0: no cap. A stream refused for it
	// is answered 200 with a retry hint and no event, so that EventSource tries again.
	MaxStreams int
	// MaxStreamsPerClient caps the open streams of one client (a token's subject, else an
	// address); 0: no cap. Answered like MaxStreams.
	MaxStreamsPerClient int
	// PublishRate is the HTTP publishes per second allowed to one client, with bursts of
	// PublishBurst; 0: no limit. Beyond it, a publish is answered 429 with Retry-After.
	PublishRate  float64
	PublishBurst int
	// TrustedProxies are the proxies whose X-Forwarded-For names the client. Empty: none,
	// the client is the address a request comes from.
	TrustedProxies []netip.Prefix
	// Auth checks the tokens of streams and publishes. Nil: no authentication, everything
	// is open. The Gateway does not close it.
	Auth *auth.Verifier
	// AuthCookie is the cookie that may carry a stream's token.
	AuthCookie string
	// ServeMetrics serves GET /metrics (Prometheus) on Handler. Turn it off to serve
	// Gateway.MetricsHandler on a listener of its own instead.
	ServeMetrics bool
	// CORSOrigins lists the origins ("scheme://host[:port]") allowed to use the gateway
	// from a browser page on another origin; "*" allows any. Empty: same-origin only.
	CORSOrigins []string
	// UI serves a page to try the gateway from a browser at GET /. False: GET / is 404.
	UI bool
	// PresenceWait bounds the wait of GET /presence for the other gateways' answers. A
	// gateway that embeds the NATS server of the stream knows how many gateways share it,
	// and stops waiting once they have all answered; on a leaf node or an external
	// deployment, every survey waits this long. From 10ms to 10s.
	PresenceWait time.Duration
}

// DefaultOptions returns the defaults of every option but Bus. The event size limit is
// what common SSE client libraries accept.
func DefaultOptions() Options {
	return Options{
		KeepAlive:      15 * time.Second,
		Retry:          3 * time.Second,
		BufferSize:     512,
		RecentEvents:   4096,
		MaxEventBytes:  64 << 10,
		MaxHeaderBytes: 32 << 10,
		MaxTopics:      32,
		WriteTimeout:   10 * time.Second,
		PublishTimeout: 10 * time.Second,
		AuthCookie:     "natsse_token",
		// Far above what one page or service needs, and below what exhausts a small
		// server's open files; a client alone cannot take every stream.
		MaxStreams:          10000,
		MaxStreamsPerClient: 4000,
		PublishRate:         5000,
		PublishBurst:        10000,
		ServeMetrics:        true,
		UI:                  true,
		PresenceWait:        300 * time.Millisecond,
	}
}

// An OptionError reports an Options field whose value cannot be used.
type OptionError = natsbus.OptionError

// Validate reports every field whose value cannot be used, each as an *OptionError, joined
// with errors.Join. New calls it.
func (o Options) Validate() error {
	var errs []error
	bad := func(option, format string, args ...any) {
		errs = append(errs, &OptionError{Package: "gateway", Option: option, Reason: fmt.Sprintf(format, args...)})
	}
	if o.Bus == nil {
		bad("Bus", "required")
	}
	if o.KeepAlive < time.Second {
		bad("KeepAlive", "%s: at least 1s", o.KeepAlive)
	}
	if o.Retry < 100*time.Millisecond {
		bad("Retry", "%s: at least 100ms (a tiny retry makes browsers reconnect in a tight loop)", o.Retry)
	}
	if o.BufferSize < 1 {
		bad("BufferSize", "%d: at least 1", o.BufferSize)
	}
	if o.RecentEvents < 0 {
		bad("RecentEvents", "%d: negative", o.RecentEvents)
	}
	if o.MaxEventBytes < 256 {
		bad("MaxEventBytes", "%d: at least 256", o.MaxEventBytes)
	}
	if o.MaxHeaderBytes < 1024 {
		bad("MaxHeaderBytes", "%d: at least 1024", o.MaxHeaderBytes)
	}
	if o.MaxTopics < 1 {
		bad("MaxTopics", "%d: at least 1", o.MaxTopics)
	}
	if o.WriteTimeout < 100*time.Millisecond {
		bad("WriteTimeout", "%s: at least 100ms", o.WriteTimeout)
	}
	if o.PublishTimeout <= 0 {
		bad("PublishTimeout", "%s: must be positive", o.PublishTimeout)
	}
	if o.MaxStreams < 0 {
		bad("MaxStreams", "%d: negative", o.MaxStreams)
	}
	if o.MaxStreamsPerClient < 0 {
		bad("MaxStreamsPerClient", "%d: negative", o.MaxStreamsPerClient)
	}
	if o.PublishRate < 0 || (o.PublishRate > 0 && o.PublishBurst < 1) {
		bad("PublishRate", "%g per second with bursts of %d: want a rate of 0 or more, and bursts of 1 or more", o.PublishRate, o.PublishBurst)
	}
	if o.Auth != nil && (o.AuthCookie == "" || strings.ContainsAny(o.AuthCookie, " \t;,=\"")) {
		bad("AuthCookie", "%q: want a cookie name", o.AuthCookie)
	}
	if o.PresenceWait < 10*time.Millisecond || o.PresenceWait > 10*time.Second {
		bad("PresenceWait", "%s: from 10ms to 10s", o.PresenceWait)
	}
	if _, err := newCORSPolicy(o.CORSOrigins); err != nil {
		bad("CORSOrigins", "%s", strings.TrimPrefix(err.Error(), "gateway: "))
	}
	return errors.Join(errs...)
}
