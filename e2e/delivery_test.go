package e2e

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/natsse/natsse/sseformat"
)

// publication is one event published by TestDelivery.
type publication struct {
	via   string // "http", "nats" (core publish) or "js" (JetStream publish)
	topic string
	typ   string
	data  string
	key   string // Idempotency-Key or Nats-Msg-Id
	dup   bool   // a retry of the previous publication with the same key: not stored again
}

// TestDelivery publishes over HTTP, core NATS and JetStream while subscribers with single,
// multiple, overlapping and wildcard topics listen. Each subscriber must receive exactly
// the events its topics match, each once, in publication order, with the id the publisher
// was told (HTTP answer, JetStream ack), the event type and the data.
func TestDelivery(t *testing.T) {
	t.Parallel()
	g := startGateway(t)
	nc, js := g.natsConn(t)

	pubs := []publication{
		{via: "http", topic: "orders.eu", typ: "created", data: "order 1"},
		{via: "nats", topic: "orders.eu", typ: "updated", data: "order 1 updated"},
		{via: "js", topic: "payments.us", typ: "paid", data: "payment 1"},
		{via: "http", topic: "orders.us", data: "order 2, no type"},
		{via: "http", topic: "orders.eu.north", typ: "created", data: "three tokens"},
		{via: "nats", topic: "other.topic", data: "for the catch-all only"},
		{via: "js", topic: "orders.eu", typ: "multi", data: "multi\nline\r\ndata\rend"},
		{via: "http", topic: "orders.eu", typ: "empty", data: ""},
		{via: "http", topic: "orders.eu", data: " leading space"},
		{via: "http", topic: "orders.eu", data: "trailing newline\n"},
		{via: "nats", topic: "payments.us", data: "ünïcödé ✓ 😀"},
		{via: "http", topic: "payments.us", typ: "idem", data: "http idempotent", key: "k-http-1"},
		{via: "http", topic: "payments.us", typ: "idem", data: "http idempotent", key: "k-http-1", dup: true},
		{via: "js", topic: "orders.eu", typ: "idem", data: "js idempotent", key: "k-js-1"},
		{via: "js", topic: "orders.eu", typ: "idem", data: "js idempotent", key: "k-js-1", dup: true},
		{via: "nats", topic: "orders.us", data: "core idempotent", key: "k-core-1"},
		{via: "nats", topic: "orders.us", data: "core idempotent", key: "k-core-1", dup: true},
		// On the same NATS connection as the duplicate before it, so stored after it if
		// that were stored at all.
		{via: "js", topic: "orders.us", data: "after the core duplicate"},
		{via: "http", topic: "fin", typ: "fin", data: "end"},
	}

	subs := []struct {
		name     string
		filters  []string
		envelope bool
	}{
		{name: "everything", filters: []string{">"}},
		{name: "single", filters: []string{"orders.eu", "fin"}},
		{name: "star", filters: []string{"orders.*", "fin"}},
		{name: "tail", filters: []string{"orders.>", "fin"}},
		{name: "multi", filters: []string{"orders.eu", "payments.us", "fin"}},
		{name: "overlapping", filters: []string{"orders.*", "orders.eu", "orders.>", "fin"}},
		{name: "middle star", filters: []string{"*.us", "fin"}},
		{name: "envelope", filters: []string{"orders.eu", "payments.*", "fin"}, envelope: true},
		{name: "none match", filters: []string{"nothing.here", "fin"}},
	}
	streams := make([]*sseStream, len(subs))
	for i, s := range subs {
		q := topicQuery(s.filters...)
		if s.envelope {
			q += "&envelope=true"
		}
		streams[i] = g.subscribe(t, q)
	}
	everything := streams[0]

	// Publish one at a time: each publication is stored before the next one starts, so
	// the stream sequences are 1, 2, 3... in this order.
	var epoch string
	var seq uint64
	var everythingGot []sseformat.Event // what the catch-all received, one event per publication
	seqOf := make([]uint64, len(pubs))
	for i, p := range pubs {
		if !p.dup {
			seq++
		}
		seqOf[i] = seq
		switch p.via {
		case "http":
			res := g.publishKey(t, p.topic, p.typ, p.data, p.key)
			if epoch == "" {
				epoch = epochOf(t, res.ID)
			}
			want := publishResult{ID: formatID(epoch, seq), Topic: p.topic, Seq: seq, Duplicate: p.dup}
			if res != want {
				t.Fatalf("publication %d: answer %+v, want %+v", i, res, want)
			}
		case "js":
			var opts []jetstream.PublishOpt
			if p.key != "" {
				opts = append(opts, jetstream.WithMsgID(p.key))
			}
			ack, err := js.PublishMsg(t.Context(), natsMsg(p.topic, p.typ, p.data, ""), opts...)
			if err != nil {
				t.Fatalf("publication %d: JetStream publish: %v", i, err)
			}
			if ack.Sequence != seq || ack.Duplicate != p.dup {
				t.Fatalf("publication %d: ack seq %d duplicate %v, want %d %v", i, ack.Sequence, ack.Duplicate, seq, p.dup)
			}
		case "nats":
			if err := nc.PublishMsg(natsMsg(p.topic, p.typ, p.data, p.key)); err != nil {
				t.Fatalf("publication %d: NATS publish: %v", i, err)
			}
			if err := nc.Flush(); err != nil {
				t.Fatalf("publication %d: flush: %v", i, err)
			}
		}
		if p.dup {
			continue
		}
		// Wait until the event is out, which also tells a core publish's sequence.
		ev := everything.next(t)
		everythingGot = append(everythingGot, ev)
		if ev.ID != formatID(epoch, seq) || ev.Type != p.typ || ev.Data != wireData(p.data) {
			t.Fatalf("publication %d (%s %s %q): catch-all got %+v, want id %s", i, p.via, p.topic, p.data, ev, formatID(epoch, seq))
		}
	}

	for i, s := range subs {
		t.Run(s.name, func(t *testing.T) {
			var want []sseformat.Event
			for j, p := range pubs {
				if p.dup || !matchAny(s.filters, p.topic) {
					continue
				}
				data := wireData(p.data)
				if s.envelope {
					data = envelopeJSON(t, p.topic, p.typ, p.data)
				}
				want = append(want, sseformat.Event{ID: formatID(epoch, seqOf[j]), Type: p.typ, Data: data})
			}
			var got []sseformat.Event
			if i == 0 {
				got = everythingGot // read event by event while publishing
			} else {
				got = streams[i].until(t, len(pubs), func(ev sseformat.Event) bool { return ev.Type == "fin" })
			}
			if len(got) != len(want) {
				t.Fatalf("got %d events, want %d:\ngot  %+v\nwant %+v", len(got), len(want), got, want)
			}
			for k := range want {
				if s.envelope {
					checkEnvelope(t, got[k], want[k])
					continue
				}
				if got[k] != want[k] {
					t.Errorf("event %d: got %+v, want %+v", k, got[k], want[k])
				}
			}
		})
	}
}

// envelopeJSON is the data of an event sent with envelope=true.
func envelopeJSON(tb testing.TB, topic, typ, data string) string {
	tb.Helper()
	m := map[string]string{"topic": topic, "data": data}
	if typ != "" {
		m["type"] = typ
	}
	b, err := json.Marshal(m)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// checkEnvelope compares an enveloped event with the expected one field by field: the
// JSON must have exactly topic, data and (when not empty) type.
func checkEnvelope(tb testing.TB, got, want sseformat.Event) {
	tb.Helper()
	if got.ID != want.ID || got.Type != want.Type {
		tb.Errorf("enveloped event: id %q type %q, want %q %q", got.ID, got.Type, want.ID, want.Type)
	}
	var g, w map[string]any
	if err := json.Unmarshal([]byte(got.Data), &g); err != nil {
		tb.Fatalf("enveloped data %q is not JSON: %v", got.Data, err)
	}
	json.Unmarshal([]byte(want.Data), &w)
	if len(g) != len(w) {
		tb.Errorf("envelope %s, want %s", got.Data, want.Data)
	}
	for k, v := range w {
		if g[k] != v {
			tb.Errorf("envelope %s: %s = %v, want %v", got.Data, k, g[k], v)
		}
	}
}

// TestEnvelopeOff checks that envelope=false and envelope=0 mean plain data, and that
// the same event carries the same id with and without an envelope.
func TestEnvelopeOff(t *testing.T) {
	t.Parallel()
	g := startGateway(t)
	plain := g.subscribe(t, "topic=a.b&envelope=false")
	zero := g.subscribe(t, "topic=a.b&envelope=0")
	one := g.subscribe(t, "topic=a.b&envelope=1")
	res := g.publish(t, "a.b", "", `{"already":"json"}`)
	for _, s := range []*sseStream{plain, zero} {
		if ev := s.next(t); ev.ID != res.ID || ev.Data != `{"already":"json"}` || ev.Type != "" {
			t.Errorf("plain event %+v", ev)
		}
	}
	ev := one.next(t)
	checkEnvelope(t, ev, sseformat.Event{ID: res.ID, Data: envelopeJSON(t, "a.b", "", `{"already":"json"}`)})
}

// TestHealth checks the health, readiness and stats endpoints.
func TestHealth(t *testing.T) {
	t.Parallel()
	g := startGateway(t)
	for _, path := range []string{"/healthz", "/readyz"} {
		var body map[string]any
		g.getJSON(t, path, &body)
	}
	var raw map[string]any
	g.getJSON(t, "/stats", &raw)
	for _, k := range []string{"connections", "dispatched", "slow_cut", "sanitized", "last_seq"} {
		if _, ok := raw[k].(float64); !ok {
			t.Errorf("/stats %v: no number %q", raw, k)
		}
	}
	s := g.stats(t)
	if s.Connections != 0 || s.LastSeq != 0 || s.SlowCut != 0 {
		t.Errorf("fresh gateway stats %+v", s)
	}
	stream := g.subscribe(t, "topic=h")
	pollUntil(t, eventTimeout, "1 connection in /stats", func() bool { return g.stats(t).Connections == 1 })
	res := g.publish(t, "h", "", "x")
	stream.next(t)
	s = g.stats(t)
	if s.LastSeq != res.Seq || s.Dispatched != 1 {
		t.Errorf("stats after one event %+v, want last_seq %d, dispatched 1", s, res.Seq)
	}
	stream.close()
	pollUntil(t, eventTimeout, "0 connections in /stats", func() bool { return g.stats(t).Connections == 0 })
}

// TestConfigVariants checks GATEWAY_NATS_ADDR=off (HTTP only) and GATEWAY_SUBJECT_PREFIX.
func TestConfigVariants(t *testing.T) {
	t.Parallel()
	t.Run("nats off", func(t *testing.T) {
		t.Parallel()
		g := startGateway(t, "GATEWAY_NATS_ADDR=off")
		if g.natsURL != "off" {
			t.Errorf("started line says nats=%q, want off", g.natsURL)
		}
		s := g.subscribe(t, "topic=x")
		res := g.publish(t, "x", "t", "over http only")
		if ev := s.next(t); ev.ID != res.ID || ev.Data != "over http only" || ev.Type != "t" {
			t.Errorf("got %+v", ev)
		}
	})
	t.Run("subject prefix", func(t *testing.T) {
		t.Parallel()
		g := startGateway(t, "GATEWAY_SUBJECT_PREFIX=custom")
		nc, _ := g.natsConn(t)
		s := g.subscribe(t, "topic=orders.eu")
		// Not under the prefix: not an event.
		if err := nc.Publish("sse.orders.eu", []byte("wrong prefix")); err != nil {
			t.Fatal(err)
		}
		if err := nc.Publish("custom.orders.eu", []byte("right prefix")); err != nil {
			t.Fatal(err)
		}
		if ev := s.next(t); ev.Data != "right prefix" {
			t.Errorf("got %+v, want the event published on custom.orders.eu", ev)
		}
		res := g.publish(t, "orders.eu", "", "http")
		if ev := s.next(t); ev.ID != res.ID || ev.Data != "http" {
			t.Errorf("got %+v, want %s", ev, res.ID)
		}
		sub, err := nc.SubscribeSync("custom.>")
		if err != nil {
			t.Fatal(err)
		}
		nc.Flush()
		g.publish(t, "orders.us", "", "seen on NATS")
		m, err := sub.NextMsg(eventTimeout)
		if err != nil || m.Subject != "custom.orders.us" || string(m.Data) != "seen on NATS" {
			t.Errorf("NATS subscriber got %v, %v; want the HTTP publish on custom.orders.us", m, err)
		}
	})
}

// TestPublishAnswer checks the publish answer's headers and JSON shape.
func TestPublishAnswer(t *testing.T) {
	t.Parallel()
	g := startGateway(t)
	resp, body := g.do(t, http.MethodPost, "/publish/a.b.c?event=ping", strings.NewReader("x"), nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: %s", resp.Status, body)
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("answer %q: %v", body, err)
	}
	for _, k := range []string{"id", "topic", "seq", "duplicate"} {
		if _, ok := m[k]; !ok {
			t.Errorf("answer %s has no %q", body, k)
		}
	}
	if m["topic"] != "a.b.c" || m["seq"] != float64(1) || m["duplicate"] != false {
		t.Errorf("answer %s", body)
	}
}
