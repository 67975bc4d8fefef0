package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestBadRequests sends malformed requests: each must be answered with the right 4xx
// status and a JSON body {"error": ..., "code": ...} with both non-empty, nothing must be
// stored, and the gateway must go on serving.
func TestBadRequests(t *testing.T) {
	t.Parallel()
	g := startGateway(t)
	many := make([]string, 33)
	for i := range many {
		many[i] = fmt.Sprintf("t%d", i)
	}
	for _, tc := range []struct {
		name   string
		method string
		path   string
		header http.Header
		body   string
		status int
		code   string // "" when any code will do
	}{
		// Streams.
		{name: "no topic", method: "GET", path: "/events", status: 400},
		{name: "empty topic", method: "GET", path: "/events?topic=", status: 400},
		{name: "empty token", method: "GET", path: "/events?topic=a..b", status: 400, code: "invalid_topic"},
		{name: "leading dot", method: "GET", path: "/events?topic=.a", status: 400, code: "invalid_topic"},
		{name: "trailing dot", method: "GET", path: "/events?topic=a.", status: 400, code: "invalid_topic"},
		{name: "space in topic", method: "GET", path: "/events?topic=a%20b", status: 400, code: "invalid_topic"},
		{name: "tab in topic", method: "GET", path: "/events?topic=a%09b", status: 400, code: "invalid_topic"},
		{name: "> not last", method: "GET", path: "/events?topic=a.%3E.b", status: 400, code: "invalid_topic"},
		{name: "partial wildcard", method: "GET", path: "/events?topic=a.b*", status: 400, code: "invalid_topic"},
		{name: "one bad topic of two", method: "GET", path: "/events?topic=ok&topic=a..b", status: 400, code: "invalid_topic"},
		{name: "too many topics", method: "GET", path: "/events?" + topicQuery(many...), status: 400},
		{name: "typo topics", method: "GET", path: "/events?topics=a", status: 400},
		{name: "typo Topic", method: "GET", path: "/events?Topic=a", status: 400},
		{name: "typo last-event-id", method: "GET", path: "/events?topic=a&last-event-id=x-1", status: 400},
		{name: "typo envelop", method: "GET", path: "/events?topic=a&envelop=true", status: 400},
		{name: "bad envelope", method: "GET", path: "/events?topic=a&envelope=maybe", status: 400},
		{name: "garbage Last-Event-ID", method: "GET", path: "/events?topic=a", header: http.Header{"Last-Event-ID": {"garbage"}}, status: 400, code: "invalid_last_event_id"},
		{name: "garbage last_event_id", method: "GET", path: "/events?topic=a&last_event_id=garbage", status: 400, code: "invalid_last_event_id"},
		{name: "id without sequence", method: "GET", path: "/events?topic=a&last_event_id=abc-", status: 400, code: "invalid_last_event_id"},
		{name: "id with bad sequence", method: "GET", path: "/events?topic=a&last_event_id=abc-x1", status: 400, code: "invalid_last_event_id"},
		{name: "id with signed sequence", method: "GET", path: "/events?topic=a&last_event_id=abc-%2B1", status: 400, code: "invalid_last_event_id"},
		// Other spellings of an id the gateway issues, e.g. dn0x748fle8c-1, are not its ids.
		{name: "upper-case Last-Event-ID", method: "GET", path: "/events?topic=a", header: http.Header{"Last-Event-ID": {"DN0X748FLE8C-1"}}, status: 400, code: "invalid_last_event_id"},
		{name: "upper-case last_event_id", method: "GET", path: "/events?topic=a&last_event_id=DN0X748FLE8C-1", status: 400, code: "invalid_last_event_id"},
		{name: "zero-padded Last-Event-ID", method: "GET", path: "/events?topic=a", header: http.Header{"Last-Event-ID": {"dn0x748fle8c-0001"}}, status: 400, code: "invalid_last_event_id"},
		{name: "zero-padded last_event_id", method: "GET", path: "/events?topic=a&last_event_id=dn0x748fle8c-0001", status: 400, code: "invalid_last_event_id"},
		{name: "zero-padded epoch", method: "GET", path: "/events?topic=a&last_event_id=0dn0x748fle8c-1", status: 400, code: "invalid_last_event_id"},
		{name: "bad header wins over good query", method: "GET", path: "/events?topic=a&last_event_id=earliest", header: http.Header{"Last-Event-ID": {"nope"}}, status: 400, code: "invalid_last_event_id"},
		{name: "foreign origin", method: "GET", path: "/events?topic=a", header: http.Header{"Origin": {"http://elsewhere.example"}}, status: 403},

		// Publishes.
		{name: "publish empty token", method: "POST", path: "/publish/a..b", body: "x", status: 400, code: "invalid_topic"},
		{name: "publish no topic", method: "POST", path: "/publish/", body: "x", status: 400},
		{name: "publish star", method: "POST", path: "/publish/a.*", body: "x", status: 400, code: "invalid_topic"},
		{name: "publish tail wildcard", method: "POST", path: "/publish/a.%3E", body: "x", status: 400, code: "invalid_topic"},
		{name: "publish space", method: "POST", path: "/publish/a%20b", body: "x", status: 400, code: "invalid_topic"},
		{name: "publish long topic", method: "POST", path: "/publish/" + strings.Repeat("a", 300), body: "x", status: 400, code: "invalid_topic"},
		{name: "publish invalid UTF-8", method: "POST", path: "/publish/a", body: "ab\xff\xfecd", status: 400},
		{name: "publish too large", method: "POST", path: "/publish/a", body: strings.Repeat("x", 70000), status: 413},
		{name: "publish too large once encoded", method: "POST", path: "/publish/a", body: strings.Repeat("\n", 20000), status: 413},
		{name: "publish event with LF", method: "POST", path: "/publish/a?event=x%0Ay", body: "x", status: 400, code: "invalid_event_type"},
		{name: "publish event with CR", method: "POST", path: "/publish/a?event=x%0Dy", body: "x", status: 400, code: "invalid_event_type"},
		{name: "publish event with NUL", method: "POST", path: "/publish/a?event=x%00y", body: "x", status: 400, code: "invalid_event_type"},
		{name: "publish event gap", method: "POST", path: "/publish/a?event=gap", body: "x", status: 400, code: "invalid_event_type"},
		{name: "publish event token_expired", method: "POST", path: "/publish/a?event=token_expired", body: "x", status: 400, code: "invalid_event_type"},
		{name: "publish typo evnt", method: "POST", path: "/publish/a?evnt=x", body: "x", status: 400},
		{name: "publish long Idempotency-Key", method: "POST", path: "/publish/a", header: http.Header{"Idempotency-Key": {strings.Repeat("k", 300)}}, body: "x", status: 400},

		// Methods and paths.
		{name: "GET publish", method: "GET", path: "/publish/a", status: 405},
		{name: "POST events", method: "POST", path: "/events?topic=a", status: 405},
		{name: "DELETE events", method: "DELETE", path: "/events?topic=a", status: 405},
		{name: "PUT healthz", method: "PUT", path: "/healthz", status: 405},
		{name: "unknown path", method: "GET", path: "/nope", status: 404},
		{name: "POST root", method: "POST", path: "/", status: 405},
		{name: "unknown page file", method: "GET", path: "/ui/nope.js", status: 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			req, err := http.NewRequestWithContext(t.Context(), tc.method, g.url(tc.path), body)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.header {
				req.Header[k] = v
			}
			resp, err := g.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				// An accepted stream would not end: fail now rather than read it.
				t.Fatalf("status 200 (%s), want %d", resp.Header.Get("Content-Type"), tc.status)
			}
			b, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.status {
				t.Errorf("status %d, want %d; body %s", resp.StatusCode, tc.status, b)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type %q, want application/json", ct)
			}
			var e errorResult
			if err := json.Unmarshal(b, &e); err != nil {
				t.Fatalf("body %q: %v", b, err)
			}
			if e.Error == "" || e.Code == "" {
				t.Errorf("body %s: want non-empty error and code", b)
			}
			if tc.code != "" && e.Code != tc.code {
				t.Errorf("code %q, want %q (body %s)", e.Code, tc.code, b)
			}
		})
	}
	t.Run("still serving", func(t *testing.T) {
		if s := g.stats(t); s.LastSeq != 0 || s.Connections != 0 {
			t.Errorf("after bad requests: stats %+v, want nothing stored and no stream", s)
		}
		s := g.subscribe(t, "topic=a")
		res := g.publish(t, "a", "", "fine")
		if ev := s.next(t); ev.ID != res.ID || ev.Data != "fine" || res.Seq != 1 {
			t.Errorf("got %+v for %+v", ev, res)
		}
	})
}

// TestLimits checks GATEWAY_MAX_TOPICS and GATEWAY_MAX_EVENT_BYTES.
func TestLimits(t *testing.T) {
	t.Parallel()
	g := startGateway(t, "GATEWAY_MAX_TOPICS=2", "GATEWAY_MAX_EVENT_BYTES=1024")
	if resp, b := g.do(t, "GET", "/events?"+topicQuery("a", "b", "c"), nil, nil); resp.StatusCode != 400 {
		t.Errorf("3 topics with a limit of 2: %s %s", resp.Status, b)
	}
	s := g.subscribe(t, topicQuery("a", "b"))
	if resp, b := g.do(t, "POST", "/publish/a", strings.NewReader(strings.Repeat("x", 2000)), nil); resp.StatusCode != 413 {
		t.Errorf("2000 bytes with a limit of 1024: %s %s", resp.Status, b)
	}
	res := g.publish(t, "b", "", strings.Repeat("y", 900))
	if ev := s.next(t); ev.ID != res.ID || len(ev.Data) != 900 {
		t.Errorf("got %s with %d bytes, want %s", ev.ID, len(ev.Data), res.ID)
	}
}

// TestTopicLength: a topic or a filter may be 256 bytes long, counted in bytes, for streams
// and publishes alike; an event on the longest topic arrives; one byte more is refused.
func TestTopicLength(t *testing.T) {
	t.Parallel()
	g := startGateway(t)
	for _, longest := range []string{
		strings.Repeat("a", 127) + "." + strings.Repeat("b", 128),
		strings.Repeat("é", 128), // 2 bytes each
	} {
		if len(longest) != 256 {
			t.Fatalf("%d bytes", len(longest))
		}
		filter := longest[:254] + ".>"
		s := g.subscribe(t, topicQuery(longest, filter))
		res := g.publish(t, longest, "", "on the longest topic")
		if ev := s.next(t); ev.ID != res.ID || ev.Data != "on the longest topic" {
			t.Errorf("got %+v, want %s", ev, res.ID)
		}
		for _, over := range []string{longest + "c", filter[:254] + "c.>"} {
			resp, cancel := g.openStream(t, topicQuery(over), streamOpts{})
			if resp.StatusCode == http.StatusOK {
				cancel()
				t.Fatalf("a stream on %d bytes was accepted", len(over))
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			cancel()
			expectRefused(t, fmt.Sprintf("stream on %d bytes", len(over)), resp, body, 400, "invalid_topic", "")
		}
		resp, body := g.do(t, "POST", "/publish/"+url.PathEscape(longest+"c"), strings.NewReader("x"), nil)
		expectRefused(t, "publish on 257 bytes", resp, body, 400, "invalid_topic", "")
	}
}

// TestStartFailures runs gateways that cannot start: each must exit non-zero, quickly,
// with one clear error line and no crash.
func TestStartFailures(t *testing.T) {
	t.Parallel()
	const timeout = 15 * time.Second
	checkFailure := checkStartFailure

	t.Run("data dir locked", func(t *testing.T) {
		t.Parallel()
		first := startGateway(t)
		began := time.Now()
		code, lines := runGateway(t, timeout, first.dataDir, nil)
		t.Logf("second gateway exited after %s", time.Since(began).Round(time.Millisecond))
		checkFailure(t, code, lines, 1, first.dataDir, "lock")
		// The first one is unharmed.
		s := first.subscribe(t, "topic=a")
		res := first.publish(t, "a", "", "still here")
		if ev := s.next(t); ev.ID != res.ID {
			t.Errorf("first gateway after the second one's attempt: %+v, want %s", ev, res.ID)
		}
	})
	t.Run("HTTP port taken", func(t *testing.T) {
		t.Parallel()
		ln := listenLocal(t)
		code, lines := runGateway(t, timeout, t.TempDir(), nil, "GATEWAY_HTTP_ADDR="+ln.Addr().String())
		checkFailure(t, code, lines, 1, ln.Addr().String(), "in use")
	})
	t.Run("NATS port taken", func(t *testing.T) {
		t.Parallel()
		ln := listenLocal(t)
		began := time.Now()
		code, lines := runGateway(t, timeout, t.TempDir(), nil, "GATEWAY_NATS_ADDR="+ln.Addr().String())
		took := time.Since(began)
		t.Logf("exited after %s", took.Round(time.Millisecond))
		checkFailure(t, code, lines, 1, ln.Addr().String(), "in use")
		if took > 5*time.Second {
			t.Errorf("took %s to fail, want a few seconds at most", took.Round(time.Millisecond))
		}
	})
	for _, tc := range []struct {
		env     string
		mention string
	}{
		{"GATEWAY_KEEPALIVE=abc", "GATEWAY_KEEPALIVE"},
		{"GATEWAY_KEEPALIVE=500ms", "GATEWAY_KEEPALIVE"},
		{"GATEWAY_RETRY=0s", "GATEWAY_RETRY"},
		{"GATEWAY_BUFFER_SIZE=0", "GATEWAY_BUFFER_SIZE"},
		{"GATEWAY_BUFFER_SIZE=many", "GATEWAY_BUFFER_SIZE"},
		{"GATEWAY_RECENT_EVENTS=-1", "GATEWAY_RECENT_EVENTS"},
		{"GATEWAY_MAX_TOPICS=0", "GATEWAY_MAX_TOPICS"},
		{"GATEWAY_MAX_EVENT_BYTES=10", "GATEWAY_MAX_EVENT_BYTES"},
		{"GATEWAY_HISTORY_MAX_AGE=-1h", "GATEWAY_HISTORY_MAX_AGE"},
		{"GATEWAY_HISTORY_MAX_MSGS=-5", "GATEWAY_HISTORY_MAX"},
		{"GATEWAY_WRITE_TIMEOUT=1ms", "GATEWAY_WRITE_TIMEOUT"},
		{"GATEWAY_LOG_FORMAT=xml", "GATEWAY_LOG_FORMAT"},
		{"GATEWAY_DATA_DIR=", "GATEWAY_DATA_DIR"},
	} {
		t.Run(tc.env, func(t *testing.T) {
			t.Parallel()
			code, lines := runGateway(t, timeout, t.TempDir(), nil, tc.env)
			checkFailure(t, code, lines, 1, tc.mention)
		})
	}
	t.Run("bad CORS origin", func(t *testing.T) {
		t.Parallel()
		code, lines := runGateway(t, timeout, t.TempDir(), nil, "GATEWAY_CORS_ORIGINS=ftp://x")
		checkFailure(t, code, lines, 1, "CORS")
	})
	t.Run("bad subject prefix", func(t *testing.T) {
		t.Parallel()
		code, lines := runGateway(t, timeout, t.TempDir(), nil, "GATEWAY_SUBJECT_PREFIX=a..b")
		checkFailure(t, code, lines, 1, "prefix")
	})
	t.Run("unknown argument", func(t *testing.T) {
		t.Parallel()
		code, lines := runGateway(t, timeout, t.TempDir(), []string{"--port=80"})
		checkFailure(t, code, lines, 2, "--port=80")
	})
}

// listenLocal takes a local port for the test's duration.
func listenLocal(tb testing.TB) net.Listener {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	return ln
}

// TestUsageListsEveryDocumentedVariable checks that -h and --help list every variable of
// README's tables of variables, each on a line of its own, and exit 0 without starting.
// (cmd/gateway checks -h against the configuration's struct, defaults included.)
func TestUsageListsEveryDocumentedVariable(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var documented []string
	for _, l := range strings.Split(string(readme), "\n") {
		if strings.HasPrefix(l, "| `GATEWAY_") {
			cells := strings.Split(l, "|")
			documented = append(documented, regexp.MustCompile(`GATEWAY_[A-Z0-9_]+`).FindAllString(cells[1], -1)...)
		}
	}
	if len(documented) < 40 {
		t.Fatalf("README documents %d variables: the tables were not found", len(documented))
	}
	for _, arg := range []string{"-h", "--help"} {
		t.Run(arg, func(t *testing.T) {
			t.Parallel()
			code, lines := runGateway(t, 15*time.Second, t.TempDir(), []string{arg}, "GATEWAY_HTTP_ADDR=127.0.0.1:1")
			if code != 0 {
				t.Errorf("exit code %d, want 0", code)
			}
			listed := make(map[string]bool)
			for _, l := range lines {
				if f := strings.Fields(l); len(f) > 2 {
					listed[f[0]] = true
				}
			}
			for _, v := range documented {
				if !listed[v] {
					t.Errorf("%s does not list %s", arg, v)
				}
			}
			if out := strings.Join(lines, "\n"); strings.Contains(out, "gateway started") {
				t.Errorf("%s started the gateway:\n%s", arg, out)
			}
		})
	}
}
