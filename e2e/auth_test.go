package e2e

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// authSecret is the HMAC key of the gateways in these tests.
const authSecret = "e2e-secret-0123456789abcdef-0123456789"

// mint signs a token for sub granting subscribe and publish filters, expiring at exp.
// The tokens carry the issuer and audience that some of the tests' gateways require.
func mint(tb testing.TB, sub string, exp time.Time, subscribe, publish []string) string {
	tb.Helper()
	return sign(tb, jwt.MapClaims{
		"sub": sub, "exp": exp.Unix(), "iss": "https://issuer.example", "aud": "natsse",
		"natsse": map[string]any{"subscribe": subscribe, "publish": publish},
	})
}

// mintWith is a valid token for orders.*, changed by change.
func mintWith(tb testing.TB, change func(jwt.MapClaims)) string {
	tb.Helper()
	c := jwt.MapClaims{"sub": "42", "exp": time.Now().Add(time.Hour).Unix(), "iss": "https://issuer.example",
		"aud": "natsse", "natsse": map[string]any{"subscribe": []string{"orders.*"}}}
	change(c)
	return sign(tb, c)
}

func sign(tb testing.TB, c jwt.MapClaims) string {
	tb.Helper()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte(authSecret))
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

func bearer(token string) http.Header { return http.Header{"Authorization": {"Bearer " + token}} }

// expectRefused checks a refused request's status, JSON code and WWW-Authenticate header
// (none expected when challenge is ""), and returns the error's message.
func expectRefused(tb testing.TB, what string, resp *http.Response, body []byte, status int, code, challenge string) (message string) {
	tb.Helper()
	var e errorResult
	if resp.StatusCode != status || json.Unmarshal(body, &e) != nil || e.Code != code {
		tb.Errorf("%s: %d %s, want %d with code %q", what, resp.StatusCode, body, status, code)
	}
	if got := resp.Header.Get("WWW-Authenticate"); got != challenge {
		tb.Errorf("%s: WWW-Authenticate %q, want %q", what, got, challenge)
	}
	return e.Error
}

// publishAs publishes data on topic over HTTP with header, and returns the answer.
func publishAs(tb testing.TB, g *gatewayProc, topic, data string, header http.Header) (*http.Response, []byte) {
	tb.Helper()
	return g.do(tb, http.MethodPost, "/publish/"+topic, strings.NewReader(data), header)
}

// TestAuthHTTP checks every decision of the HTTP side with auth on: where the token comes
// from, 401 against 403, grants with wildcards and {sub}, anonymous topics, publishing.
func TestAuthHTTP(t *testing.T) {
	t.Parallel()
	g := startGateway(t, "GATEWAY_AUTH_SECRET="+authSecret, "GATEWAY_AUTH_ANONYMOUS=public.>",
		"GATEWAY_AUTH_ISSUER=https://issuer.example", "GATEWAY_AUTH_AUDIENCE=natsse")
	hour := time.Now().Add(time.Hour)
	reader := mint(t, "42", hour, []string{"orders.*", "users.{sub}.>"}, nil)
	writer := mint(t, "svc", hour, nil, []string{"orders.created"})
	const unauthorized, forbidden = "unauthorized", "forbidden"
	const invalid = `Bearer error="invalid_token"`

	t.Run("streams refused", func(t *testing.T) {
		for _, tc := range []struct {
			name, query string
			header      http.Header
			status      int
			code, chal  string
			names       string // what a 403 names
		}{
			{"no token", "topic=orders.eu", nil, 401, unauthorized, "Bearer", ""},
			{"garbage", "topic=orders.eu", bearer("garbage"), 401, unauthorized, invalid, ""},
			{"not bearer", "topic=orders.eu", http.Header{"Authorization": {"Basic " + reader}}, 401, unauthorized, invalid, ""},
			{"expired", "topic=orders.eu", bearer(mint(t, "42", time.Now().Add(-time.Minute), []string{">"}, nil)), 401, unauthorized, invalid, ""},
			{"not yet valid", "topic=orders.eu", bearer(mintWith(t, func(c jwt.MapClaims) { c["nbf"] = time.Now().Add(time.Minute).Unix() })), 401, unauthorized, invalid, ""},
			{"wrong issuer", "topic=orders.eu", bearer(mintWith(t, func(c jwt.MapClaims) { c["iss"] = "https://evil.example" })), 401, unauthorized, invalid, ""},
			{"wrong audience", "topic=orders.eu", bearer(mintWith(t, func(c jwt.MapClaims) { c["aud"] = "other" })), 401, unauthorized, invalid, ""},
			{"other key", "topic=orders.eu", bearer(func() string {
				s, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"exp": hour.Unix()}).SignedString([]byte("another secret of more than 32 bytes"))
				return s
			}()), 401, unauthorized, invalid, ""},
			{"invalid header, valid cookie", "topic=orders.eu", http.Header{"Authorization": {"Bearer x"}, "Cookie": {"natsse_token=" + reader}}, 401, unauthorized, invalid, ""},
			{"filter wider than the grant", "topic=orders.>", bearer(reader), 403, forbidden, "", "orders.>"},
			{"one filter of two outside", "topic=orders.eu&topic=*.created", bearer(reader), 403, forbidden, "", "*.created"},
			{"another user's topics", "topic=users.43.>", bearer(reader), 403, forbidden, "", "users.43.>"},
			{"{sub} of two tokens", "topic=users.4.2.x", bearer(mint(t, "4.2", hour, []string{"users.{sub}.>"}, nil)), 401, unauthorized, invalid, ""},
			{"anonymous beyond its topics", "topic=orders.eu&topic=public.news", nil, 401, unauthorized, "Bearer", ""},
			{"expired cookie on an anonymous topic", "topic=public.news", http.Header{"Cookie": {"natsse_token=" + mint(t, "42", time.Now().Add(-time.Minute), nil, nil)}}, 401, unauthorized, invalid, ""},
			{"invalid cookie, valid query", "topic=orders.eu&access_token=" + url.QueryEscape(reader), http.Header{"Cookie": {"natsse_token=junk"}}, 401, unauthorized, invalid, ""},
		} {
			resp, body := g.do(t, http.MethodGet, "/events?"+tc.query, nil, tc.header)
			msg := expectRefused(t, tc.name, resp, body, tc.status, tc.code, tc.chal)
			if !strings.Contains(msg, tc.names) {
				t.Errorf("%s: %q does not name %q", tc.name, msg, tc.names)
			}
		}
	})

	t.Run("streams allowed", func(t *testing.T) {
		streams := map[string]*sseStream{
			"header": g.subscribeWith(t, "topic=orders.eu&topic=users.42.>", streamOpts{header: bearer(reader)}),
			"cookie": g.subscribeWith(t, "topic=orders.*", streamOpts{header: http.Header{"Cookie": {"natsse_token=" + reader}}}),
			"query":  g.subscribe(t, "topic=orders.eu&access_token="+url.QueryEscape(reader)),
		}
		anon := g.subscribe(t, "topic=public.>")
		// A token allows what no token does, too.
		signedIn := g.subscribeWith(t, "topic=public.>", streamOpts{header: bearer(reader)})
		res := mustPublish(t, g, "orders.eu", "o1", bearer(mint(t, "svc", hour, nil, []string{"orders.*"})))
		for how, s := range streams {
			if ev := s.next(t); ev.ID != res.ID {
				t.Errorf("token in the %s: got %+v, want %s", how, ev, res.ID)
			}
		}
		pub := mustPublish(t, g, "public.news", "p1", bearer(mint(t, "svc", hour, nil, []string{"public.>"})))
		for who, s := range map[string]*sseStream{"anonymous": anon, "signed-in": signedIn} {
			if ev := s.next(t); ev.ID != pub.ID {
				t.Errorf("%s stream of public.> got %+v, want %s", who, ev, pub.ID)
			}
		}
	})

	t.Run("publishes", func(t *testing.T) {
		resp, body := publishAs(t, g, "orders.created", "x", nil)
		expectRefused(t, "no token", resp, body, 401, unauthorized, "Bearer")
		resp, body = publishAs(t, g, "orders.created", "x", http.Header{"Cookie": {"natsse_token=" + writer}})
		expectRefused(t, "the cookie only", resp, body, 401, unauthorized, "Bearer")
		resp, body = publishAs(t, g, "orders.deleted", "x", bearer(writer))
		expectRefused(t, "outside the grant", resp, body, 403, forbidden, "")
		resp, body = publishAs(t, g, "orders.created", "x", bearer(reader))
		expectRefused(t, "a reader's token", resp, body, 403, forbidden, "")
		resp, body = g.do(t, http.MethodPost, "/publish/orders.created?event=token_expired", strings.NewReader("x"), bearer(writer))
		expectRefused(t, "the reserved type token_expired", resp, body, 400, "invalid_event_type", "")
		mustPublish(t, g, "orders.created", "x", bearer(writer))
		resp, body = g.do(t, http.MethodPost, "/publish/orders.created?access_token="+url.QueryEscape(writer), strings.NewReader("x"), nil)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("publish with access_token: %d %s", resp.StatusCode, body)
		}
		// An Idempotency-Key counts within its topic: another publisher using the same key
		// on its own topic does not drop this one's event.
		h := bearer(mint(t, "b", hour, nil, []string{"b.>"}))
		h.Set("Idempotency-Key", "k1")
		other := mustPublish(t, g, "b.order", "b's", h)
		w := bearer(writer)
		w.Set("Idempotency-Key", "k1")
		mine := mustPublish(t, g, "orders.created", "mine", w)
		again := mustPublish(t, g, "orders.created", "mine", w)
		if mine.Duplicate || mine.Seq == other.Seq || !again.Duplicate || again.Seq != mine.Seq {
			t.Errorf("the same key on two topics: %+v then %+v (%+v retried); want two events, the retry a duplicate", other, mine, again)
		}
	})
}

// mustPublish publishes with header and returns the answer.
func mustPublish(tb testing.TB, g *gatewayProc, topic, data string, header http.Header) publishResult {
	tb.Helper()
	resp, body := publishAs(tb, g, topic, data, header)
	var res publishResult
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &res) != nil || res.Seq == 0 {
		tb.Fatalf("publish %s: %d %s", topic, resp.StatusCode, body)
	}
	return res
}

// TestAuthStreamExpires lets a stream's token expire: the stream ends with token_expired,
// which names the last id received, and a fresh token resumes from it with nothing lost.
func TestAuthStreamExpires(t *testing.T) {
	t.Parallel()
	g := startGateway(t, "GATEWAY_AUTH_SECRET="+authSecret, "GATEWAY_KEEPALIVE=1s")
	writer := bearer(mint(t, "svc", time.Now().Add(time.Hour), nil, []string{">"}))
	exp := time.Unix(time.Now().Add(2*time.Second).Unix(), 0) // as the token states it
	s := g.subscribeWith(t, "topic=a", streamOpts{header: bearer(mint(t, "u", exp, []string{"a"}, nil))})
	first := mustPublish(t, g, "a", "before", writer)
	if ev := s.next(t); ev.ID != first.ID {
		t.Fatalf("got %+v", ev)
	}
	evs, err := s.expectEnd(t, 2*time.Second+10*time.Second)
	ended := time.Now()
	// The notice carries no id: the client's last event id stays the last event's.
	if err == nil || len(evs) != 1 || evs[0].Type != "token_expired" || evs[0].ID != first.ID {
		t.Fatalf("stream ended with %+v, %v; want one token_expired event leaving the id at %s", evs, err, first.ID)
	}
	var notice struct {
		LastEventID string `json:"last_event_id"`
	}
	if json.Unmarshal([]byte(evs[0].Data), &notice) != nil || notice.LastEventID != first.ID {
		t.Fatalf("token_expired data %s: want last_event_id %s", evs[0].Data, first.ID)
	}
	// At exp plus the 5 s leeway, within a second of it (and half a second more for the
	// test's own reading, on a busy machine).
	if late := ended.Sub(exp); late < 5*time.Second || late > 6500*time.Millisecond {
		t.Errorf("ended %s after exp, want between the 5 s leeway and a second more", late)
	}
	missed := mustPublish(t, g, "a", "while away", writer)
	again := g.subscribeWith(t, "topic=a", streamOpts{lastEventID: notice.LastEventID,
		header: bearer(mint(t, "u", time.Now().Add(time.Hour), []string{"a"}, nil))})
	if ev := again.next(t); ev.ID != missed.ID || ev.Data != "while away" {
		t.Fatalf("resumed with %+v, want %s", ev, missed.ID)
	}
}

// TestAuthNATS connects NATS clients with tokens: each may use exactly what its token
// grants, and nothing without one.
func TestAuthNATS(t *testing.T) {
	t.Parallel()
	g := startGateway(t, "GATEWAY_AUTH_SECRET="+authSecret)
	s := g.subscribeWith(t, "topic=orders.>", streamOpts{header: bearer(mint(t, "r", time.Now().Add(time.Hour), []string{"orders.>"}, nil))})
	if _, err := nats.Connect(g.natsURL, nats.MaxReconnects(0)); err == nil || !strings.Contains(err.Error(), "Authorization") {
		t.Fatalf("without a token: %v, want an authorization error", err)
	}
	errs := make(chan error, 10)
	nc, err := nats.Connect(g.natsURL, nats.MaxReconnects(0),
		nats.Token(mint(t, "svc", time.Now().Add(time.Hour), []string{"orders.>"}, []string{"orders.*"})),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { errs <- err }))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	// Another token client subscribed inside its grant gets the event once.
	peer, err := nats.Connect(g.natsURL, nats.MaxReconnects(0), nats.Token(mint(t, "peer", time.Now().Add(time.Hour), []string{"orders.>"}, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	peerGot, err := peer.SubscribeSync("sse.orders.>")
	if err != nil {
		t.Fatal(err)
	}
	peer.Flush()
	js, _ := jetstream.New(nc)
	m := nats.NewMsg("sse.orders.created")
	m.Header.Set("Sse-Event", "created")
	m.Data = []byte("from a service")
	ack, err := js.PublishMsg(t.Context(), m)
	if err != nil {
		t.Fatalf("JetStream publish inside the grant: %v", err)
	}
	if ev := s.next(t); ev.Type != "created" || ev.Data != "from a service" || !strings.HasSuffix(ev.ID, "-"+strconv.FormatUint(ack.Sequence, 10)) {
		t.Fatalf("stream got %+v for seq %d", ev, ack.Sequence)
	}
	if m, err := peerGot.NextMsg(eventTimeout); err != nil || string(m.Data) != "from a service" {
		t.Fatalf("the other token client: %v %v", m, err)
	}
	// Once: a marker published after it is the next message.
	if err := nc.Publish("sse.orders.marker", []byte("marker")); err != nil {
		t.Fatal(err)
	}
	if m, err := peerGot.NextMsg(eventTimeout); err != nil || string(m.Data) != "marker" {
		t.Fatalf("the other token client: %v %v, want the marker published after the event", m, err)
	}
	for what, try := range map[string]func(){
		"publish outside the grant":   func() { nc.Publish("sse.users.1", []byte("x")) },
		"subscribe outside the grant": func() { nc.SubscribeSync("sse.users.>") },
		"JetStream API":               func() { nc.Request("$JS.API.STREAM.DELETE.NATSSE", nil, time.Second) },
	} {
		try()
		select {
		case err := <-errs:
			if !errors.Is(err, nats.ErrPermissionViolation) {
				t.Errorf("%s: %v, want a permissions violation", what, err)
			}
		case <-time.After(eventTimeout):
			t.Errorf("%s: allowed", what)
		}
	}
	// NATS closes a connection when its token expires.
	short, err := nats.Connect(g.natsURL, nats.MaxReconnects(0), nats.Token(mint(t, "short", time.Now().Add(time.Second), []string{"x"}, nil)))
	if err != nil {
		t.Fatal(err)
	}
	closed := make(chan struct{})
	short.SetClosedHandler(func(*nats.Conn) { close(closed) })
	select {
	case <-closed:
	case <-time.After(eventTimeout):
		short.Close()
		t.Error("a NATS connection outlived its token")
	}
}

// TestAuthOffWarning checks the warning of a gateway without auth: said once at start when
// it listens beyond this host, not when it listens on loopback only or has auth on.
func TestAuthOffWarning(t *testing.T) {
	t.Parallel()
	warned := func(g *gatewayProc) int {
		return len(g.log.entries(func(e logEntry) bool {
			return e["level"] == "WARN" && strings.HasPrefix(e.msg(), "auth is off")
		}))
	}
	for _, tc := range []struct {
		name string
		env  []string
		want int
	}{
		{"open to the network", []string{"GATEWAY_HTTP_ADDR=0.0.0.0:0"}, 1},
		{"loopback only", nil, 0},
		{"auth on", []string{"GATEWAY_HTTP_ADDR=0.0.0.0:0", "GATEWAY_AUTH_SECRET=" + authSecret}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if n := warned(startGateway(t, tc.env...)); n != tc.want {
				t.Errorf("%d warnings, want %d", n, tc.want)
			}
		})
	}
}
