package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// eventTimeout bounds the wait for one expected event.
const eventTimeout = 20 * time.Second

func (g *gatewayProc) url(pathAndQuery string) string { return g.base + pathAndQuery }

// publishResult is the answer to POST /publish/<topic>.
type publishResult struct {
	ID        string `json:"id"`
	Topic     string `json:"topic"`
	Seq       uint64 `json:"seq"`
	Duplicate bool   `json:"duplicate"`
}

// errorResult is the body of every error answer.
type errorResult struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

// tryPublish publishes data on topic over HTTP, with an event type and an Idempotency-Key
// when they are not empty. It is safe to call from any goroutine.
func (g *gatewayProc) tryPublish(ctx context.Context, topic, typ, data, key string) (publishResult, error) {
	u := g.url("/publish/" + topic)
	if typ != "" {
		u += "?event=" + url.QueryEscape(typ)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(data))
	if err != nil {
		return publishResult{}, err
	}
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := g.client.Do(req)
	if err != nil {
		return publishResult{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return publishResult{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return publishResult{}, fmt.Errorf("publish %s: %s: %s", topic, resp.Status, body)
	}
	var res publishResult
	if err := json.Unmarshal(body, &res); err != nil {
		return res, fmt.Errorf("publish %s: answer %q: %w", topic, body, err)
	}
	return res, nil
}

// publish publishes over HTTP and checks the answer's topic.
func (g *gatewayProc) publish(tb testing.TB, topic, typ, data string) publishResult {
	tb.Helper()
	return g.publishKey(tb, topic, typ, data, "")
}

func (g *gatewayProc) publishKey(tb testing.TB, topic, typ, data, key string) publishResult {
	tb.Helper()
	res, err := g.tryPublish(tb.Context(), topic, typ, data, key)
	if err != nil {
		tb.Fatal(err)
	}
	if res.Topic != topic || res.ID == "" || res.Seq == 0 {
		tb.Fatalf("publish %s: answer %+v", topic, res)
	}
	return res
}

// do sends a request and returns the response with its body read.
func (g *gatewayProc) do(tb testing.TB, method, pathAndQuery string, body io.Reader, header http.Header) (*http.Response, []byte) {
	tb.Helper()
	req, err := http.NewRequestWithContext(tb.Context(), method, g.url(pathAndQuery), body)
	if err != nil {
		tb.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := g.client.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, pathAndQuery, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("%s %s: reading body: %v", method, pathAndQuery, err)
	}
	return resp, b
}

// getJSON GETs path, expects 200 with a JSON body and decodes it into v.
func (g *gatewayProc) getJSON(tb testing.TB, path string, v any) {
	tb.Helper()
	resp, body := g.do(tb, http.MethodGet, path, nil, nil)
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("GET %s: %s: %s", path, resp.Status, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		tb.Fatalf("GET %s: Content-Type %q, want application/json", path, ct)
	}
	if err := json.Unmarshal(body, v); err != nil {
		tb.Fatalf("GET %s: %q: %v", path, body, err)
	}
}

// gatewayStats is GET /stats.
type gatewayStats struct {
	Connections int64  `json:"connections"`
	Dispatched  uint64 `json:"dispatched"`
	SlowCut     uint64 `json:"slow_cut"`
	Sanitized   uint64 `json:"sanitized"`
	LastSeq     uint64 `json:"last_seq"`
}

func (g *gatewayProc) stats(tb testing.TB) gatewayStats {
	tb.Helper()
	var s gatewayStats
	g.getJSON(tb, "/stats", &s)
	return s
}

// natsConn connects to the gateway's NATS listener; the connection is closed when the
// test ends.
func (g *gatewayProc) natsConn(tb testing.TB) (*nats.Conn, jetstream.JetStream) {
	tb.Helper()
	nc, err := nats.Connect(g.natsURL, nats.Name("e2e"), nats.MaxReconnects(0))
	if err != nil {
		tb.Fatalf("connect to %s: %v", g.natsURL, err)
	}
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatalf("jetstream: %v", err)
	}
	return nc, js
}

// natsMsg builds a NATS message on the subject of topic, with an Sse-Event header when typ
// is not empty and a Nats-Msg-Id when msgID is not empty.
func natsMsg(topic, typ, data, msgID string) *nats.Msg {
	m := nats.NewMsg("sse." + topic)
	m.Data = []byte(data)
	if typ != "" {
		m.Header.Set("Sse-Event", typ)
	}
	if msgID != "" {
		m.Header.Set(nats.MsgIdHdr, msgID)
	}
	return m
}

// matchTopic reports whether a NATS-style filter (with "*" and ">") matches topic.
func matchTopic(filter, topic string) bool {
	f, t := strings.Split(filter, "."), strings.Split(topic, ".")
	for i, tok := range f {
		if tok == ">" {
			return len(t) > i
		}
		if i >= len(t) || (tok != "*" && tok != t[i]) {
			return false
		}
	}
	return len(f) == len(t)
}

func matchAny(filters []string, topic string) bool {
	for _, f := range filters {
		if matchTopic(f, topic) {
			return true
		}
	}
	return false
}

// topicQuery builds "topic=a&topic=b".
func topicQuery(topics ...string) string {
	q := url.Values{"topic": topics}
	return q.Encode()
}

// wireData is data as an SSE client receives it: every line break becomes LF.
func wireData(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\r", "\n")
}
