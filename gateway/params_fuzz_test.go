package gateway

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"github.com/natsse/natsse/natsbus"
	"github.com/natsse/natsse/sseformat"
)

// fuzzGateway is a Gateway with its options only: enough for the request parsers.
func fuzzGateway() *Gateway {
	return &Gateway{opts: Options{MaxTopics: 8, MaxEventBytes: 4096}}
}

func fuzzContext(method, target string, header http.Header, body []byte) (*gin.Context, bool) {
	req, err := http.NewRequest(method, "http://gw.test/", bytes.NewReader(body))
	if err != nil {
		return nil, false
	}
	u, err := url.Parse(target)
	if err != nil {
		return nil, false
	}
	req.URL = u
	req.Header = header
	c, _ := gin.CreateTestContext(httptest.NewRecorder())
	c.Request = req
	return c, true
}

// FuzzParseStream feeds GET /events arbitrary query strings and Last-Event-ID headers: the
// parser never panics, refuses with a 4xx, or accepts only what the stream can serve.
func FuzzParseStream(f *testing.F) {
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
	} {
		f.Add(seed[0], seed[1])
	}
	g := fuzzGateway()
	f.Fuzz(func(t *testing.T, query, lastID string) {
		h := http.Header{}
		h["Last-Event-Id"] = []string{lastID}
		c, ok := fuzzContext("GET", "/events?"+query, h, nil)
		if !ok {
			return
		}
		r, err := g.parseStream(c)
		if err != nil {
			if status, _ := statusOf(err); status < 400 || status >= 500 {
				t.Fatalf("error %v maps to status %d", err, status)
			}
			return
		}
		if len(r.topics) == 0 || len(r.topics) > g.opts.MaxTopics {
			t.Fatalf("accepted %d topics", len(r.topics))
		}
		for _, topic := range r.topics {
			if err := natsbus.ValidateFilter(topic); err != nil {
				t.Fatalf("accepted topic %q: %v", topic, err)
			}
		}
		if r.lastID != "" && r.lastID != lastIDEarliest {
			if got := r.resume.String(); got != r.lastID {
				// Accepted ids are ours, in canonical form, so they round-trip.
				if p, err := parseID(got); err != nil || p != r.resume {
					t.Fatalf("id %q parsed to %+v, which does not round-trip", r.lastID, r.resume)
				}
			}
		}
	})
}

// FuzzParsePublish feeds POST /publish arbitrary topics, queries, keys and bodies: the
// parser never panics, refuses with a 4xx, or accepts an event that encodes within limits.
func FuzzParsePublish(f *testing.F) {
	f.Add("orders.eu", "event=created", "key-1", []byte(`{"a":1}`))
	f.Add("a.*", "", "", []byte("x"))
	f.Add("a", "event=x%0Ay", "", []byte("x"))
	f.Add("a", "evnt=x", "", []byte("\xff"))
	f.Add("a", "event=gap", "k\r\n", bytes.Repeat([]byte("\n"), 1000))
	g := fuzzGateway()
	f.Fuzz(func(t *testing.T, topic, query, key string, body []byte) {
		h := http.Header{}
		h[HeaderIdempotencyKey] = []string{key}
		c, ok := fuzzContext("POST", "/publish/x?"+query, h, body)
		if !ok {
			return
		}
		c.Params = gin.Params{{Key: "topic", Value: "/" + topic}}
		// As the handler does: the topic is checked first, then the rest.
		err := natsbus.ValidateTopic(topic)
		var p natsbus.Publication
		if err == nil {
			p, err = g.parsePublish(c, topic, new([]byte))
		}
		if err != nil {
			if status, _ := statusOf(err); status < 400 || status >= 500 {
				t.Fatalf("error %v maps to status %d", err, status)
			}
			return
		}
		if natsbus.ValidateTopic(p.Topic) != nil || sseformat.ValidateType(p.Type) != nil || p.Type == GapEventType || !utf8.Valid(p.Data) {
			t.Fatalf("accepted %+v", p)
		}
		if n := sseformat.EncodedLen(sseformat.Event{ID: position{1<<64 - 1, 1<<64 - 1}.String(), Type: p.Type, Data: string(p.Data)}); n > g.opts.MaxEventBytes {
			t.Fatalf("accepted an event of %d encoded bytes, limit %d", n, g.opts.MaxEventBytes)
		}
	})
}
