package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// metricsSnapshot is one scrape of /metrics, parsed by Prometheus's own text parser.
type metricsSnapshot map[string]*dto.MetricFamily

// scrapeMetrics reads base+"/metrics" (base: "http://host:port").
func scrapeMetrics(tb testing.TB, base string) metricsSnapshot {
	tb.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		tb.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("GET /metrics: %s", resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		tb.Fatalf("GET /metrics: Content-Type %q, want Prometheus text", ct)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		tb.Fatalf("GET /metrics: %v", err)
	}
	return families
}

// value is the counter's or gauge's value of the series of name with labels ("k=v"
// pairs), or the sample count of a histogram. It fails the test when no series of name
// exists; a series with other labels missing is 0, as a labelled counter not yet moved.
func (m metricsSnapshot) value(tb testing.TB, name string, labels ...string) float64 {
	tb.Helper()
	mf := m[name]
	if mf == nil {
		tb.Fatalf("metric %s missing", name)
	}
	for _, s := range mf.Metric {
		if !hasLabels(s, labels) {
			continue
		}
		switch {
		case s.Counter != nil:
			return s.Counter.GetValue()
		case s.Gauge != nil:
			return s.Gauge.GetValue()
		case s.Histogram != nil:
			return float64(s.Histogram.GetSampleCount())
		}
	}
	return 0
}

func hasLabels(s *dto.Metric, labels []string) bool {
	for _, l := range labels {
		k, v, _ := strings.Cut(l, "=")
		found := false
		for _, lp := range s.Label {
			found = found || (lp.GetName() == k && lp.GetValue() == v)
		}
		if !found {
			return false
		}
	}
	return true
}

// metricsDelta is the difference of one series between two scrapes.
func metricsDelta(tb testing.TB, before, after metricsSnapshot, name string, labels ...string) float64 {
	tb.Helper()
	return after.value(tb, name, labels...) - before.value(tb, name, labels...)
}

// waitMetric polls base's metrics until the series of name reaches want.
func waitMetric(tb testing.TB, base string, want float64, name string, labels ...string) metricsSnapshot {
	tb.Helper()
	var m metricsSnapshot
	pollUntil(tb, 20*time.Second, fmt.Sprintf("%s%v = %g", name, labels, want), func() bool {
		m = scrapeMetrics(tb, base)
		return m.value(tb, name, labels...) == want
	})
	return m
}

// TestMetrics checks that each series moves as the gateway's work says it should: streams
// opened and open, events dispatched and delivered, replays, gaps, slow cuts, publishes.
func TestMetrics(t *testing.T) {
	t.Parallel()
	const streams, events = 3, 5
	g := startGateway(t, "GATEWAY_BUFFER_SIZE=4", "GATEWAY_WRITE_TIMEOUT=2m")
	start := scrapeMetrics(t, g.base)
	for _, name := range []string{"natsse_build_info", "go_goroutines", "process_open_fds",
		"natsse_publish_duration_seconds", "natsse_delivery_lag_seconds"} {
		if start[name] == nil {
			t.Errorf("metric %s missing", name)
		}
	}
	if v := start.value(t, "natsse_streams_open"); v != 0 {
		t.Fatalf("natsse_streams_open = %g before any stream", v)
	}

	// N streams, M events: dispatched once each, delivered N×M times.
	subs := make([]*sseStream, streams)
	for i := range subs {
		subs[i] = g.subscribe(t, "topic=metrics.a")
	}
	before := waitMetric(t, g.base, streams, "natsse_streams_open")
	var ids []string
	for i := range events {
		ids = append(ids, g.publish(t, "metrics.a", "", fmt.Sprint(i)).ID)
	}
	for _, s := range subs {
		s.take(t, events)
	}
	after := waitMetric(t, g.base, before.value(t, "natsse_deliveries_total")+streams*events, "natsse_deliveries_total")
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"natsse_streams_opened_total", []string{"result=ok"}, 0},
		{"natsse_events_dispatched_total", nil, events},
		{"natsse_http_publishes_total", []string{"result=ok"}, events},
		{"natsse_publish_duration_seconds", nil, events},
		{"natsse_replayed_events_total", nil, 0},
	} {
		if d := metricsDelta(t, before, after, c.name, c.labels...); d != c.want {
			t.Errorf("%s%v moved by %g, want %g", c.name, c.labels, d, c.want)
		}
	}
	if v := after.value(t, "natsse_streams_opened_total", "result=ok"); v != streams {
		t.Errorf("natsse_streams_opened_total{result=ok} = %g, want %d", v, streams)
	}
	if v := after.value(t, "natsse_delivery_lag_seconds"); v < 1 {
		t.Errorf("natsse_delivery_lag_seconds has %g samples after live deliveries", v)
	}
	if v := after.value(t, "natsse_stream_last_seq"); v != events {
		t.Errorf("natsse_stream_last_seq = %g, want %d", v, events)
	}

	// A resume that replays K events.
	before = after
	resumed := g.subscribeFrom(t, "topic=metrics.a", ids[1])
	resumed.take(t, events-2)
	after = waitMetric(t, g.base, before.value(t, "natsse_replayed_events_total")+events-2, "natsse_replayed_events_total")
	if d := metricsDelta(t, before, after, "natsse_deliveries_total"); d != events-2 {
		t.Errorf("natsse_deliveries_total moved by %g for a replay of %d", d, events-2)
	}

	// A gap: an id beyond the end of the stream.
	ahead := g.subscribeFrom(t, "topic=metrics.a", strings.TrimSuffix(ids[0], "-1")+"-999")
	if ev := ahead.next(t); ev.Type != "gap" {
		t.Fatalf("resume from beyond the end: first event %+v, want a gap", ev)
	}
	waitMetric(t, g.base, 1, "natsse_gaps_total", "reason=ahead")

	// Closing streams lowers the gauge.
	for _, s := range append(subs, resumed, ahead) {
		s.close()
	}
	waitMetric(t, g.base, 0, "natsse_streams_open")

	// A client that reads nothing is cut off: publish until it is.
	before = scrapeMetrics(t, g.base)
	dialStream(t, g, "/events?topic=metrics.slow")
	big := strings.Repeat("x", 8<<10)
	pollUntil(t, 60*time.Second, "a slow client cut off", func() bool {
		for range 50 {
			g.publish(t, "metrics.slow", "", big)
		}
		return scrapeMetrics(t, g.base).value(t, "natsse_slow_cuts_total") > before.value(t, "natsse_slow_cuts_total")
	})

	// A bad publish, and a stream refused for its request.
	before = scrapeMetrics(t, g.base)
	if resp, _ := g.do(t, http.MethodPost, "/publish/bad..topic", strings.NewReader("x"), nil); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad publish: %s", resp.Status)
	}
	if resp, _ := g.do(t, http.MethodGet, "/events", nil, nil); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("stream without a topic: %s", resp.Status)
	}
	after = scrapeMetrics(t, g.base)
	if d := metricsDelta(t, before, after, "natsse_http_publishes_total", "result=invalid_topic"); d != 1 {
		t.Errorf("natsse_http_publishes_total{result=invalid_topic} moved by %g, want 1", d)
	}
	if d := metricsDelta(t, before, after, "natsse_http_publishes_total", "result=ok"); d != 0 {
		t.Errorf("natsse_http_publishes_total{result=ok} moved by %g for a bad publish", d)
	}
	if v := after.value(t, "natsse_streams_opened_total", "result=bad_request"); v != 1 {
		t.Errorf("natsse_streams_opened_total{result=bad_request} = %g, want 1", v)
	}
}

// TestMetricsAuthFailures checks that refused credentials are counted by reason.
func TestMetricsAuthFailures(t *testing.T) {
	t.Parallel()
	g := startGateway(t, "GATEWAY_AUTH_SECRET="+authSecret)
	before := scrapeMetrics(t, g.base)
	g.do(t, http.MethodGet, "/events?topic=a", nil, nil)
	g.do(t, http.MethodGet, "/events?topic=a", nil, bearer("not-a-token"))
	g.do(t, http.MethodGet, "/events?topic=a", nil, bearer(mint(t, "u", time.Now().Add(time.Hour), []string{"b"}, nil)))
	if nc, err := nats.Connect(g.natsURL, nats.Token("not-a-token"), nats.MaxReconnects(0)); err == nil {
		nc.Close()
		t.Fatal("a NATS client with an invalid token was let in")
	}
	after := scrapeMetrics(t, g.base)
	for _, reason := range []string{"no_token", "invalid_token", "forbidden", "nats_client"} {
		if d := metricsDelta(t, before, after, "natsse_auth_failures_total", "reason="+reason); d != 1 {
			t.Errorf("natsse_auth_failures_total{reason=%s} moved by %g, want 1", reason, d)
		}
	}
}

// TestMetricsAddr checks that GATEWAY_METRICS_ADDR moves /metrics off the HTTP port.
func TestMetricsAddr(t *testing.T) {
	t.Parallel()
	addr := fmt.Sprintf("127.0.0.1:%d", freePorts(t, 1)[0])
	g := startGateway(t, "GATEWAY_METRICS_ADDR="+addr)
	if resp, _ := g.do(t, http.MethodGet, "/metrics", nil, nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /metrics on the HTTP port: %s, want 404 with GATEWAY_METRICS_ADDR set", resp.Status)
	}
	g.publish(t, "a", "", "x")
	waitMetric(t, "http://"+addr, 1, "natsse_events_dispatched_total")
	resp, err := http.Get("http://" + addr + "/events?topic=a")
	if err != nil {
		t.Fatalf("GET /events on the metrics address: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /events on the metrics address: %s, want 404", resp.Status)
	}
}
