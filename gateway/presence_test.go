package gateway

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/natsse/natsse/auth"
)

// presenceAnswer is what GET /presence answered.
type presenceAnswer struct {
	status int
	body   presenceResponse
	err    errorBody
	header http.Header
}

// streamsByTopic returns the streams counted for each topic.
func (a presenceAnswer) streamsByTopic() map[string]uint64 {
	out := make(map[string]uint64, len(a.body.Topics))
	for t, p := range a.body.Topics {
		out[t] = p.Streams
	}
	return out
}

// getPresence asks GET /presence?<query>, with the token as a bearer token when set.
func (e *testEnv) getPresence(t testing.TB, query, token string) presenceAnswer {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, e.srv.URL+"/presence?"+query, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return doPresence(t, req)
}

func doPresence(t testing.TB, req *http.Request) presenceAnswer {
	t.Helper()
	client := &http.Client{Timeout: waitFor}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("presence: %v", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	a := presenceAnswer{status: resp.StatusCode, header: resp.Header}
	if resp.StatusCode == http.StatusOK {
		err = json.Unmarshal(data, &a.body)
	} else {
		err = json.Unmarshal(data, &a.err)
	}
	if err != nil {
		t.Fatalf("presence: status %d, body %q: %v", resp.StatusCode, data, err)
	}
	return a
}

// waitPresence polls GET /presence?<query> until it answers want from gateways gateways.
func (e *testEnv) waitPresence(t testing.TB, query string, want map[string]uint64, gateways int) {
	t.Helper()
	var last presenceAnswer
	eventually(t, func() bool {
		last = e.getPresence(t, query, "")
		return last.status == http.StatusOK && last.body.Gateways == gateways && maps.Equal(last.streamsByTopic(), want)
	}, func() string {
		return fmt.Sprintf("%s answered %d %+v %+v; want %v from %d gateways", e.srv.URL, last.status, last.body, last.err, want, gateways)
	})
}

// TestPresence opens streams with exact, "*" and ">" filters, and one with two filters that
// both match, and checks the counts per topic as streams come and go.
func TestPresence(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, nil, nil)
	const query = "topic=orders.eu&topic=orders.us&topic=orders.eu.deep&topic=shop.eu&topic=users&topic=nobody"
	e.waitPresence(t, query, map[string]uint64{"orders.eu": 0, "orders.us": 0, "orders.eu.deep": 0, "shop.eu": 0, "users": 0, "nobody": 0}, 1)

	exact := e.subscribe(t, "topic=orders.eu", "")
	e.subscribe(t, "topic=orders.*", "")
	e.subscribe(t, "topic=orders.>", "")
	both := e.subscribe(t, "topic=orders.*&topic=*.eu", "") // both match orders.eu: once
	e.subscribe(t, "topic=users&envelope=true", "")
	e.waitPresence(t, query, map[string]uint64{"orders.eu": 4, "orders.us": 3, "orders.eu.deep": 1, "shop.eu": 1, "users": 1, "nobody": 0}, 1)

	exact.close()
	both.close()
	e.waitPresence(t, query, map[string]uint64{"orders.eu": 2, "orders.us": 2, "orders.eu.deep": 1, "shop.eu": 0, "users": 1, "nobody": 0}, 1)
	// A topic asked twice is answered once.
	e.waitPresence(t, "topic=users&topic=users", map[string]uint64{"users": 1}, 1)

	// A gateway alone answers at once: its survey ends because every gateway answered,
	// not because the wait ran out.
	res, err := e.gw.presence.Survey(t.Context(), []string{"orders.us"}, time.Minute)
	if err != nil || !res.AllAnswered || res.Gateways != 1 || res.Streams[0] != 2 {
		t.Fatalf("survey: %+v, %v; want 2 streams from 1 gateway, all answered", res, err)
	}
}

func TestPresenceBadInput(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, func(o *Options) { o.MaxTopics = 3 }, nil)
	for _, tc := range []struct{ query, code string }{
		{"topic=orders.*", "invalid_topic"},
		{"topic=orders.>", "invalid_topic"},
		{"topic=a&topic=>", "invalid_topic"},
		{"topic=a..b", "invalid_topic"},
		{"topic=" + url.QueryEscape("a b"), "invalid_topic"},
		{"", "bad_request"},
		{"topics=a", "bad_request"},
		{"topic=a&topic=b&topic=c&topic=d", "bad_request"},
	} {
		a := e.getPresence(t, tc.query, "")
		if a.status != http.StatusBadRequest || a.err.Code != tc.code {
			t.Errorf("%q: %d %+v, want 400 %s", tc.query, a.status, a.err, tc.code)
		}
	}
	if a := e.getPresence(t, "topic=a&topic=b&topic=c&cachebuster=1", ""); a.status != http.StatusOK || len(a.body.Topics) != 3 {
		t.Errorf("three topics: %d %+v", a.status, a.body)
	}
}

// TestPresenceAuth: with auth on, GET /presence needs the right to subscribe to every
// topic, from a token in the header, the cookie or the access_token parameter.
func TestPresenceAuth(t *testing.T) {
	t.Parallel()
	secret := []byte("0123456789abcdef0123456789abcdef")
	v, err := auth.New(auth.Options{Secret: secret, Anonymous: []string{"public.>"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	e := newTestEnv(t, func(o *Options) { o.Auth = v }, nil)
	token := func(subscribe ...string) string {
		tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
			"sub": "reader", "exp": time.Now().Add(time.Hour).Unix(), "natsse": map[string]any{"subscribe": subscribe},
		}).SignedString(secret)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	rooms, other := token("rooms.>"), token("other")
	for _, tc := range []struct {
		name, query, token string
		status             int
	}{
		{"no token", "topic=rooms.1", "", http.StatusUnauthorized},
		{"invalid token", "topic=rooms.1", "not-a-token", http.StatusUnauthorized},
		{"token without the grant", "topic=rooms.1", other, http.StatusForbidden},
		{"one topic not granted", "topic=rooms.1&topic=other.1", rooms, http.StatusForbidden},
		{"granted", "topic=rooms.1&topic=rooms.2", rooms, http.StatusOK},
		{"anonymous topic", "topic=public.news", "", http.StatusOK},
		{"granted, and anonymous", "topic=rooms.1&topic=public.news", rooms, http.StatusOK},
		{"a wildcard, granted or not", "topic=rooms.*", rooms, http.StatusBadRequest},
	} {
		a := e.getPresence(t, tc.query, tc.token)
		if a.status != tc.status {
			t.Errorf("%s: status %d %+v, want %d", tc.name, a.status, a.err, tc.status)
		}
		if a.status == http.StatusUnauthorized && !strings.HasPrefix(a.header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s: 401 without WWW-Authenticate: Bearer", tc.name)
		}
	}
	// The token may come in the access_token parameter, or in the cookie.
	if a := e.getPresence(t, "topic=rooms.1&access_token="+rooms, ""); a.status != http.StatusOK {
		t.Errorf("token in the query: %d %+v", a.status, a.err)
	}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, e.srv.URL+"/presence?topic=rooms.1", nil)
	req.AddCookie(&http.Cookie{Name: e.gw.opts.AuthCookie, Value: rooms})
	if a := doPresence(t, req); a.status != http.StatusOK {
		t.Errorf("token in the cookie: %d %+v", a.status, a.err)
	}
}

// TestPresenceInProgressCap: beyond maxSurveys requests in progress, a presence request is
// answered 429 with Retry-After, and served again once a slot is free.
func TestPresenceInProgressCap(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, nil, nil)
	var ends []func()
	for range maxSurveys {
		end, ok := e.gw.limits.beginSurvey()
		if !ok {
			t.Fatalf("slot %d of %d refused", len(ends)+1, maxSurveys)
		}
		ends = append(ends, end)
	}
	if a := e.getPresence(t, "topic=rooms.1", ""); a.status != http.StatusTooManyRequests || a.header.Get("Retry-After") != "1" {
		t.Fatalf("with every slot taken: %d, Retry-After %q; want 429 with Retry-After 1", a.status, a.header.Get("Retry-After"))
	}
	ends[0]()
	if a := e.getPresence(t, "topic=rooms.1", ""); a.status != http.StatusOK {
		t.Fatalf("with a slot free: %d, want 200", a.status)
	}
	for _, end := range ends[1:] {
		end()
	}
}
