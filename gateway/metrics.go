package gateway

import (
	"net/http"
	"runtime"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// The results of a stream request (natsse_streams_opened_total) besides the error codes of
// writeError: a stream accepted, and the refusals answered with a retry hint.
const (
	resultOK            = "ok"
	resultShuttingDown  = "shutting_down"
	resultMaxStreams    = "max_streams"
	resultMaxPerClient  = "max_streams_per_client"
	resultResolveFailed = "unavailable" // the stream's state could not be read: as a 503
	resultClientLeft    = "client_left" // before the stream began
)

// gapReasons are the reasons of a gap notice.
var gapReasons = []string{"expired", "stream_reset", "ahead"}

// Reasons an authentication or authorization failed (natsse_auth_failures_total).
const (
	authNoToken      = "no_token"      // none given where one is needed
	authInvalidToken = "invalid_token" // given, and refused
	authForbidden    = "forbidden"     // valid, without the grant
	authNATS         = "nats_client"   // a NATS client refused by the embedded server
)

// metrics are the Gateway's Prometheus series, in a registry of its own. What the hot path
// moves (events dispatched and delivered) are atomics read when Prometheus scrapes; a stream
// adds its deliveries once per flush, and samples the delivery lag once per flush.
type metrics struct {
	registry *prometheus.Registry

	open       atomic.Int64  // streams accepted and not yet ended
	deliveries atomic.Uint64 // events written to streams, live and replayed
	replayed   atomic.Uint64 // events written while catching up

	opened          *prometheus.CounterVec // by result
	gaps            *prometheus.CounterVec // by reason
	publishes       *prometheus.CounterVec // by result
	publishedOK     prometheus.Counter
	publishDuration prometheus.Histogram
	deliveryLag     prometheus.Histogram
	authFailures    *prometheus.CounterVec // by reason, but for NATS clients'
}

func newMetrics(g *Gateway) *metrics {
	m := &metrics{registry: prometheus.NewRegistry()}
	counter := func(name, help string, value func() uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help},
			func() float64 { return float64(value()) })
	}
	gauge := func(name, help string, value func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, value)
	}
	vec := func(name, help, label string, values ...string) *prometheus.CounterVec {
		v := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, []string{label})
		for _, l := range values { // present at 0, so that rates and alerts see them from the start
			v.WithLabelValues(l)
		}
		return v
	}
	m.opened = vec("natsse_streams_opened_total",
		"Stream requests, by result: ok for a stream accepted, else why it was refused.", "result",
		resultOK, resultMaxStreams, resultMaxPerClient)
	m.gaps = vec("natsse_gaps_total",
		"Gap notices sent: a stream could not continue exactly where its client left off.", "reason",
		gapReasons...)
	m.publishes = vec("natsse_http_publishes_total",
		"HTTP publishes, by result: ok for an event stored, else the error code answered.", "result",
		resultOK)
	m.publishedOK = m.publishes.WithLabelValues(resultOK)
	m.authFailures = vec(authFailuresName, authFailuresHelp, "reason",
		authNoToken, authInvalidToken, authForbidden)
	m.publishDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "natsse_publish_duration_seconds",
		Help:    "Time from an HTTP publish's arrival until the stream stored its event.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14), // 0.5ms to 4s
	})
	m.deliveryLag = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "natsse_delivery_lag_seconds",
		Help:    "Time from an event's storing until a stream wrote it, sampled once per write of live events to a stream (the oldest event of the write).",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16), // 0.5ms to 16s
	})
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "natsse_build_info",
		Help: "The gateway's version and the Go version it was built with; always 1.",
	}, []string{"version", "goversion"})
	build.WithLabelValues(buildVersion(), runtime.Version()).Set(1)

	h := g.hub
	m.registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		build,
		gauge("natsse_streams_open", "Streams open, catching up or live.",
			func() float64 { return float64(m.open.Load()) }),
		gauge("natsse_stream_last_seq", "The stream sequence of the last event the live feed dispatched.",
			func() float64 { return float64(h.position()) }),
		counter("natsse_events_dispatched_total", "Events the live feed fanned out, each counted once.",
			h.counters.dispatched.Load),
		counter("natsse_deliveries_total", "Events written to streams: each event once per stream that received it, live or replayed.",
			m.deliveries.Load),
		counter("natsse_replayed_events_total", "Events written to streams while they caught up (resumes and latest values).",
			m.replayed.Load),
		counter("natsse_slow_cuts_total", "Streams that fell behind their buffer and left the live path to catch up.",
			h.counters.cut.Load),
		counter("natsse_sanitized_events_total", "Events whose data or type had to be repaired to be sent.",
			h.counters.sanitized.Load),
		m.opened, m.gaps, m.publishes, m.publishDuration, m.deliveryLag,
		&withNATSRefusals{vec: m.authFailures, refused: g.bus.ClientAuthFailures},
	)
	return m
}

// handler serves the registry in Prometheus's text format (or OpenMetrics when asked).
func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{Registry: m.registry})
}

// observeLag samples the delivery lag of an event stored at stored.
func (m *metrics) observeLag(stored time.Time) {
	if !stored.IsZero() {
		m.deliveryLag.Observe(time.Since(stored).Seconds())
	}
}

// withNATSRefusals adds the NATS clients the embedded server refused to the auth failures
// counted over HTTP, as one series of natsse_auth_failures_total.
type withNATSRefusals struct {
	vec     *prometheus.CounterVec
	refused func() uint64
}

const (
	authFailuresName = "natsse_auth_failures_total"
	authFailuresHelp = "Requests refused for their credentials, by reason."
)

var natsRefusalsDesc = prometheus.NewDesc(authFailuresName, authFailuresHelp, []string{"reason"}, nil)

func (c *withNATSRefusals) Describe(ch chan<- *prometheus.Desc) { c.vec.Describe(ch) }

func (c *withNATSRefusals) Collect(ch chan<- prometheus.Metric) {
	c.vec.Collect(ch)
	ch <- prometheus.MustNewConstMetric(natsRefusalsDesc, prometheus.CounterValue, float64(c.refused()), authNATS)
}

// buildVersion is the main module's version as the go command recorded it.
func buildVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "unknown"
}
