package gateway

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/natsse/natsse/natsbus"
)

// The request fuzzers send their input through the gateway's router, in-process (see
// serveRouter), to one gateway per fuzz target, and hold its answers to README: valid
// input is accepted and comes through as sent, invalid input gets the documented 4xx and
// code, and nothing gets a 5xx.

// fuzzEnv is a gateway for a fuzz target, with a core NATS subscription to every event
// published through it.
type fuzzEnv struct {
	*testEnv
	router    http.Handler
	published *nats.Subscription
}

const fuzzMaxTopics, fuzzMaxEventBytes = 8, 4096

func newFuzzEnv(f *testing.F) *fuzzEnv {
	e := newTestEnv(f, func(o *Options) {
		o.MaxTopics, o.MaxEventBytes = fuzzMaxTopics, fuzzMaxEventBytes
		o.PublishRate = 0 // every fuzz input comes from the same client
	}, func(o *natsbus.Options) { o.ClientAddr, o.MaxBytes = "127.0.0.1:0", 64<<20 })
	nc, err := nats.Connect(e.bus.ClientURL())
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(nc.Close)
	sub, err := nc.SubscribeSync(e.bus.Prefix() + ".>")
	if err == nil {
		err = nc.Flush()
	}
	if err != nil {
		f.Fatal(err)
	}
	return &fuzzEnv{testEnv: e, router: e.gw.Handler(), published: sub}
}

// stream asks for GET /events?query with a Last-Event-ID header when lastID is set.
func (e *fuzzEnv) stream(t *testing.T, query, lastID string) routerAnswer {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "/", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.URL = &url.URL{Path: "/events", RawQuery: query}
	if lastID != "" {
		req.Header["Last-Event-Id"] = []string{lastID}
	}
	a := serveRouter(t, e.router, req)
	if a.status == http.StatusOK && a.header.Get("Content-Type") != "text/event-stream; charset=utf-8" {
		t.Fatalf("GET /events?%s: 200 with Content-Type %q", query, a.header.Get("Content-Type"))
	}
	return a
}

// publish posts body to topic, with ?event=typ and an Idempotency-Key when they are set.
// When it is accepted, it also returns what went to NATS.
func (e *fuzzEnv) publish(t *testing.T, topic, typ, key string, body []byte) (routerAnswer, *nats.Msg) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, "/", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.URL = &url.URL{Path: "/publish/" + topic}
	if typ != "" {
		req.URL.RawQuery = url.Values{"event": {typ}}.Encode()
	}
	if key != "" {
		req.Header[HeaderIdempotencyKey] = []string{key}
	}
	a := serveRouter(t, e.router, req)
	if a.status != http.StatusOK {
		return a, nil
	}
	m, err := e.published.NextMsg(waitFor)
	if err != nil {
		t.Fatalf("publish on %q answered %s, but nothing went to NATS: %v", truncate(topic, 64), a.body, err)
	}
	return a, m
}

// checkPublished checks an accepted publish: the answer names an id the gateway issues,
// of its stream, with the topic and sequence; and the event went to NATS as sent.
func (e *fuzzEnv) checkPublished(t *testing.T, a routerAnswer, m *nats.Msg, topic, typ, key string, body []byte) {
	t.Helper()
	var res publishResponse
	if err := json.Unmarshal(a.body, &res); err != nil {
		t.Fatalf("publish answer %q: %v", a.body, err)
	}
	wantID := strconv.FormatUint(e.bus.Epoch(), 36) + "-" + strconv.FormatUint(res.Seq, 10)
	if res.ID != wantID || !issuedID(res.ID) || res.Topic != topic || res.Seq == 0 || (res.Duplicate && key == "") {
		t.Fatalf("publish on %q: answer %+v", topic, res)
	}
	if m.Subject != e.bus.Subject(topic) || m.Header.Get(natsbus.HeaderEvent) != typ || !bytes.Equal(m.Data, body) {
		t.Fatalf("published %q %q %q, NATS got %q %q %q", truncate(topic, 64), truncate(typ, 64), truncate(string(body), 64),
			truncate(m.Subject, 64), truncate(m.Header.Get(natsbus.HeaderEvent), 64), truncate(string(m.Data), 64))
	}
}

// FuzzEventID: a stream asked to resume from an id in the form the gateway issues, of any
// epoch and sequence, opens; any other id gets 400 invalid_last_event_id; in the header
// and in the query alike.
func FuzzEventID(f *testing.F) {
	f.Add(uint64(1795267448464067148), uint64(1), "dn0x748fle8c-1")
	f.Add(uint64(0), uint64(0), "DN0X748FLE8C-1")
	f.Add(uint64(1<<64-1), uint64(1<<64-1), "dn0x748fle8c-0001")
	f.Add(uint64(36), uint64(10), "earliest")
	for _, raw := range []string{"", "0-0", "00-1", "1-+2", "-1", "1-", "3w5e11264sgsg-1", "1-18446744073709551616", " 1-2", "1-2\x00", "ｄ-1"} {
		f.Add(uint64(1), uint64(2), raw)
	}
	e := newFuzzEnv(f)
	f.Fuzz(func(t *testing.T, epoch, seq uint64, raw string) {
		id := position{epoch: epoch, seq: seq}.String()
		if p, err := parseID(id); err != nil || p != (position{epoch: epoch, seq: seq}) || !issuedID(id) {
			t.Fatalf("the id %q of epoch %d, seq %d: parsed to %+v, %v", id, epoch, seq, p, err)
		}
		if a := e.stream(t, "topic=a", id); a.status != http.StatusOK {
			t.Fatalf("Last-Event-ID %q: status %d %s", id, a.status, a.body)
		}
		if a := e.stream(t, "topic=a&"+url.Values{"last_event_id": {id}}.Encode(), ""); a.status != http.StatusOK {
			t.Fatalf("last_event_id=%s: status %d %s", id, a.status, a.body)
		}

		ours := raw == "" || raw == lastIDEarliest || issuedID(raw)
		for _, a := range []routerAnswer{
			e.stream(t, "topic=a", raw),
			e.stream(t, "topic=a&"+url.Values{"last_event_id": {raw}}.Encode(), ""),
		} {
			switch {
			case ours && a.status != http.StatusOK:
				t.Fatalf("id %q: status %d %s, want the stream", raw, a.status, a.body)
			case !ours && (a.status != http.StatusBadRequest || a.errorCode(t) != "invalid_last_event_id"):
				t.Fatalf("id %q: status %d %s, want 400 invalid_last_event_id", raw, a.status, a.body)
			}
		}
	})
}

// FuzzTopics: generated valid topics and filters are accepted (a publish comes through as
// sent), and each, spoiled in a way README rules out, gets 400 invalid_topic.
func FuzzTopics(f *testing.F) {
	f.Add([]byte("orders"), []byte("\xe0orders"), byte(0))
	f.Add([]byte("a\xf0b\xf0c"), []byte("\x01a\xf0b"), byte(3))
	f.Add(bytes.Repeat([]byte{11}, 300), bytes.Repeat([]byte{12, 0xf0}, 200), byte(6))
	f.Add([]byte{}, []byte{0xe0, 0xe0, 0xe1}, byte(7))
	e := newFuzzEnv(f)
	f.Fuzz(func(t *testing.T, topicData, filterData []byte, how byte) {
		topic, filter := genTopic(topicData, false), genTopic(filterData, true)
		if a := e.stream(t, url.Values{"topic": {topic, filter}}.Encode(), ""); a.status != http.StatusOK {
			t.Fatalf("stream on %q and %q: status %d %s", topic, filter, a.status, a.body)
		}
		a, m := e.publish(t, topic, "", "", []byte("x"))
		if a.status != http.StatusOK {
			t.Fatalf("publish on %q: status %d %s", topic, a.status, a.body)
		}
		e.checkPublished(t, a, m, topic, "", "", []byte("x"))

		badTopic, badFilter := spoilTopic(topic, how), spoilTopic(filter, how)
		refused, _ := e.publish(t, badTopic, "", "", []byte("x"))
		for _, a := range []routerAnswer{
			e.stream(t, url.Values{"topic": {badFilter}}.Encode(), ""),
			e.stream(t, url.Values{"topic": {"a", badTopic}}.Encode(), ""),
			refused,
		} {
			if a.status != http.StatusBadRequest || a.errorCode(t) != "invalid_topic" {
				t.Fatalf("%q / %q: status %d %s, want 400 invalid_topic", truncate(badTopic, 64), truncate(badFilter, 64), a.status, truncate(string(a.body), 64))
			}
		}
	})
}

// streamCodes are the codes README gives a refused stream request.
var streamCodes = []string{"invalid_topic", "invalid_last_event_id", "bad_request", "headers_too_large"}

// FuzzStreamRequest sends GET /events any query and Last-Event-ID: the stream opens, or
// the request gets a 4xx with a documented code that fits what was wrong.
func FuzzStreamRequest(f *testing.F) {
	for _, seed := range [][2]string{
		{"topic=a", ""},
		{"topic=a.*&topic=b.>&envelope=true", "dn0x748fle8c-42"},
		{"topic=a&last_event_id=earliest", ""},
		{"topic=a.*&latest=1&envelope=0", ""},
		{"topics=a", ""},
		{"topic=a..b", "x"},
		{"topic=%00&topic=%ff", "1-"},
		{"topic=a&last_event_id=zzzzzzzzzzzzzz-99999999999999999999", "\x00"},
		{"topic=a;b&topic", " 1-2 "},
		{"topic=a&last_event_id=DN0X748FLE8C-1", ""},
		{"topic=a&topic=b&topic=c&topic=d&topic=e&topic=f&topic=g&topic=h&topic=i", ""},
	} {
		f.Add(seed[0], seed[1])
	}
	e := newFuzzEnv(f)
	f.Fuzz(func(t *testing.T, query, lastID string) {
		a := e.stream(t, query, lastID)
		q, _ := url.ParseQuery(query) // as the gateway reads it: malformed pairs dropped
		topics := q["topic"]
		id := lastID
		if id == "" {
			id = q.Get("last_event_id")
		}
		idOK := id == "" || id == lastIDEarliest || issuedID(id)
		topicsPlain, topicsBad := len(topics) > 0 && len(topics) <= fuzzMaxTopics, len(topics) == 0 || len(topics) > fuzzMaxTopics
		for _, topic := range topics {
			valid, invalid := topicVerdict(topic, true)
			topicsPlain = topicsPlain && valid
			topicsBad = topicsBad || invalid
		}
		if a.status == http.StatusOK {
			if !idOK || topicsBad {
				t.Fatalf("opened a stream for %q with Last-Event-ID %q", query, lastID)
			}
			return
		}
		if a.status < 400 || a.status >= 500 {
			t.Fatalf("%q with Last-Event-ID %q: status %d %s", query, lastID, a.status, a.body)
		}
		switch code := a.errorCode(t); {
		case !slices.Contains(streamCodes, code):
			t.Fatalf("%q: code %q is not one README gives", query, code)
		case code == "invalid_last_event_id" && idOK:
			t.Fatalf("%q with Last-Event-ID %q: the id %q refused", query, lastID, id)
		case code == "invalid_topic" && topicsPlain:
			t.Fatalf("%q: valid topics refused: %s", query, a.body)
		}
	})
}

// FuzzPublish sends POST /publish any topic, event type, Idempotency-Key and body: the
// publish is stored and comes through as sent, or gets a 4xx with the code of something
// README rules out, never an accepted publish of something it rules out.
func FuzzPublish(f *testing.F) {
	f.Add("orders.eu", "created", "key-1", []byte(`{"a":1}`))
	f.Add("a.*", "", "", []byte("x"))
	f.Add("a", "x\ny", "", []byte("x"))
	f.Add("a", "", "", []byte("\xff"))
	f.Add("a", "gap", "k\r\n", bytes.Repeat([]byte("\n"), 1000))
	f.Add("a", "token_expired", "", []byte("x"))
	f.Add("a", "t\x00", strings.Repeat("k", 257), []byte("x"))
	f.Add("a", "", "k\nk", []byte("x"))
	f.Add("a", "", strings.Repeat("k", 257), []byte("x"))
	f.Add("a", "x\x00", "", []byte("x"))
	f.Add("a.b", "t", "", bytes.Repeat([]byte("y"), fuzzMaxEventBytes-60))
	f.Add("a.b", "t", "", bytes.Repeat([]byte("\r\n"), 600))
	f.Add("sensors.é日", "🙂", "🙂", []byte("日本"))
	f.Add("a", " x\t", " k ", []byte(" x "))
	e := newFuzzEnv(f)
	f.Fuzz(func(t *testing.T, topic, typ, key string, body []byte) {
		a, m := e.publish(t, topic, typ, key, body)
		// The codes of what README rules out in this publish; maybe: of what it may.
		var ruled, maybe []string
		switch valid, invalid := topicVerdict(topic, false); {
		case invalid:
			ruled = append(ruled, "invalid_topic")
		case !valid:
			maybe = append(maybe, "invalid_topic")
		}
		if !eventTypeValid(typ) {
			ruled = append(ruled, "invalid_event_type")
		}
		if !idempotencyKeyValid(key) {
			ruled = append(ruled, "bad_request")
		}
		if !utf8.Valid(body) {
			ruled = append(ruled, "invalid_data")
		}
		// The id is not known before the event is stored: the limit holds for the longest.
		if encodedSize(maxIDLen, typ, string(body)) > fuzzMaxEventBytes {
			if encodedSize(len("0-1"), typ, string(body)) > fuzzMaxEventBytes {
				ruled = append(ruled, "too_large")
			} else {
				maybe = append(maybe, "too_large")
			}
		}
		if a.status == http.StatusOK {
			if len(ruled) > 0 {
				t.Fatalf("accepted a publish on %q of type %q, key %q: %v", truncate(topic, 64), truncate(typ, 64), truncate(key, 64), ruled)
			}
			e.checkPublished(t, a, m, topic, typ, key, body)
			return
		}
		code := a.errorCode(t)
		wantStatus := http.StatusBadRequest
		if code == "too_large" {
			wantStatus = http.StatusRequestEntityTooLarge
		}
		switch {
		case !slices.Contains(ruled, code) && !slices.Contains(maybe, code):
			t.Fatalf("publish on %q of type %q, key %q, %d bytes: %d %s, want one of %v (or %v)",
				truncate(topic, 64), truncate(typ, 64), truncate(key, 64), len(body), a.status, a.body, ruled, maybe)
		case a.status != wantStatus:
			t.Fatalf("code %s with status %d", code, a.status)
		}
	})
}
