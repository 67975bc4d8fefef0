package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// chaosScale sizes TestChaos. The default fits CI (2 cores, a few minutes);
// E2E_CHAOS=long runs a larger one.
type chaosScale struct {
	clients  int
	duration time.Duration
	interval time.Duration // between two publishes of one publisher
}

func chaosScaleFromEnv() chaosScale {
	if os.Getenv("E2E_CHAOS") == "long" {
		return chaosScale{clients: 300, duration: 2 * time.Minute, interval: time.Millisecond}
	}
	return chaosScale{clients: 100, duration: 12 * time.Second, interval: 3 * time.Millisecond}
}

// chaosFilters are the subscriptions clients choose from: exact, wildcards, several
// topics, overlapping filters.
var chaosFilters = [][]string{
	{"c.a.0"},
	{"c.b.3"},
	{"c.a.*"},
	{"*.b.*"},
	{"c.>"},
	{"c.a.1", "c.b.2"},
	{"c.a.*", "c.a.1"},
	{"c.a.*", "*.*.2"},
	{"c.b.>", "c.a.3"},
	{"nothing.here"},
}

// chaosTopics are the topics publishers choose from.
var chaosTopics = []string{"c.a.0", "c.a.1", "c.a.2", "c.a.3", "c.b.0", "c.b.1", "c.b.2", "c.b.3"}

// TestChaos publishes over HTTP, core NATS and JetStream while clients with varied filters
// connect, read, drop and resume at random — some too slow for their buffers — and the
// gateway is killed with SIGKILL and restarted halfway. Then every acknowledged publish
// must be in the stream as published, and every client's events must equal the stream's
// matching events (id, type and data) after its first resume point (no gap, no duplicate,
// in order). A client that started live is checked from its first event, which must come
// no later than the first matching publish begun after its stream was established.
func TestChaos(t *testing.T) {
	scale := chaosScaleFromEnv()
	dir := t.TempDir()
	settings := []string{"GATEWAY_BUFFER_SIZE=32", "GATEWAY_RECENT_EVENTS=256", "GATEWAY_WRITE_TIMEOUT=2s",
		"GATEWAY_RETRY=100ms", "GATEWAY_KEEPALIVE=1s"}
	g := startGatewayIn(t, dir, settings...)
	natsAddr := strings.TrimPrefix(g.natsURL, "nats://")
	// Restarts keep the addresses, so that clients and publishers find the gateway again.
	settings = append(settings, "GATEWAY_HTTP_ADDR="+g.httpAddr, "GATEWAY_NATS_ADDR="+natsAddr)
	base := g.base
	epoch := epochOf(t, g.publish(t, "c.a.0", "", "first").ID)

	ctx := t.Context()
	pub := newPublisher(t)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	defer client.CloseIdleConnections()

	// Publishers: two over HTTP and one over JetStream, each retrying with the same key
	// until acknowledged; one core NATS publisher, fire and forget.
	for w := 0; w < 2; w++ {
		pub.start(scale.interval, func(i int) (ack, error) {
			// A retry must repeat the publish exactly: same key, same topic.
			topic := chaosTopics[(i*7+w)%len(chaosTopics)]
			key := fmt.Sprintf("h%d-%d", w, i)
			seq, err := httpPublish(ctx, client, base, topic, "http-"+key, chaosData(key))
			return ack{seq: seq, topic: topic, data: key, kind: "http"}, err
		})
	}
	// The gateway is killed halfway: the connection errors are expected, not printed.
	nc, err := nats.Connect(g.natsURL, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond),
		nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	pub.start(scale.interval, func(i int) (ack, error) {
		topic := chaosTopics[(i*5+3)%len(chaosTopics)]
		m := natsMsg(topic, "js", fmt.Sprintf("js-%d", i), fmt.Sprintf("js-%d", i))
		pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
		defer pcancel()
		a, err := js.PublishMsg(pctx, m)
		if err != nil {
			return ack{}, err
		}
		return ack{seq: a.Sequence, topic: topic, data: fmt.Sprintf("js-%d", i), kind: "js"}, nil
	})
	pub.startUnacked(scale.interval, func(i int) {
		nc.Publish("sse."+chaosTopics[rand.IntN(len(chaosTopics))], []byte(fmt.Sprintf("core-%d", i)))
	})

	// Clients.
	clients := make([]*resumer, scale.clients)
	for i := range clients {
		c := newResumer([]string{base}, 0, chaosFilters[rand.IntN(len(chaosFilters))], epoch, "")
		c.randomParam = true
		c.sums = true
		if i%10 == 0 {
			// Too slow for its buffers: it keeps its stream until the gateway cuts it off.
			c.filters = []string{"c.>"}
			c.setSlow()
		} else {
			c.budget = func() int { return 10 + rand.IntN(400) } // events before dropping the connection
		}
		switch r := rand.IntN(10); {
		case r < 2 || c.slow:
			// A slow client starts live: one that starts behind catches up from the store,
			// paced by its socket, and may never reach the live events that overflow a
			// buffer.
			c.start = "" // live: checked from the first event it receives
		case r < 4:
			c.start = "earliest"
		default:
			c.start = pub.acks.randomID(epoch) // "" until something was acknowledged
			if c.start == "" {
				c.start = "earliest"
			}
		}
		clients[i] = c
	}
	rs := runResumers(t, clients)

	// Halfway, kill the gateway and start it again on the same data dir and addresses.
	killAt := time.NewTimer(scale.duration / 2)
	select {
	case <-killAt.C:
	case <-ctx.Done():
	}
	cutBeforeKill := g.stats(t).SlowCut
	g.kill(t)
	t.Logf("gateway killed after %s; %d publishes acknowledged, %d slow clients cut off", scale.duration/2, pub.acks.count(), cutBeforeKill)
	g = startGatewayIn(t, dir, settings...)

	endAt := time.NewTimer(scale.duration / 2)
	select {
	case <-endAt.C:
	case <-ctx.Done():
	}
	pub.halt()

	// The reference: the stream itself, read directly.
	_, refJS := g.natsConn(t)
	stream := readStream(t, refJS)
	t.Logf("stream holds %d events; %d acknowledged publishes", len(stream), pub.acks.count())

	// Crash safety: every acknowledged publish is stored as published, and the stream
	// holds nothing else than what the publishers sent.
	checkChaosStream(t, stream, pub.acks.all())

	// Let every client catch up to the end of the stream, then compare.
	if !rs.catchUp(stream, 2*time.Minute) {
		t.Fatal("clients did not catch up within 2 minutes")
	}
	reconnects, events, bounded := 0, 0, 0
	for i, c := range clients {
		reconnects += c.sessions - 1
		events += len(c.seqs)
		if c.err != nil {
			t.Errorf("client %d %v: %v", i, c.filters, c.err)
			continue
		}
		want := expectedSeqs(stream, c.filters, c.startSeq(t))
		if d := seqDiff(c.seqs, want); d != "" {
			t.Errorf("client %d %v from %q (slow=%v): %s", i, c.filters, c.start, c.slow, d)
		}
		if d := c.eventDiff(stream); d != "" {
			t.Errorf("client %d %v from %q (slow=%v): %s", i, c.filters, c.start, c.slow, d)
		}
		if c.start == "" {
			d, ok := liveStartDiff(c, pub.acks.all())
			if d != "" {
				t.Errorf("client %d %v, started live (slow=%v): %s", i, c.filters, c.slow, d)
			}
			if ok {
				bounded++
			}
		}
	}
	cut := cutBeforeKill + g.stats(t).SlowCut
	t.Logf("%d clients received %d events over %d reconnects; slow clients were cut off %d times; %d live starts checked against a later publish",
		len(clients), events, reconnects, cut, bounded)
	if bounded == 0 {
		t.Error("no client that started live had a publish on its topics after its stream was established: their start was not checked")
	}
	if cut == 0 {
		t.Error("no client was ever cut off: the slow-client path was not exercised")
	}
}

// chaosData is the data of TestChaos's HTTP publish key: sizes up to 16 KiB, so that a slow
// reader's socket buffers (megabytes on the gateway's side) fill and its queue overflows,
// even on a busy machine.
func chaosData(key string) string {
	return key + " " + strings.Repeat("x", int(digest(key)%(16<<10)))
}

// checkChaosStream checks TestChaos's stream against what was published: every
// acknowledged publish is stored on its topic, with its type and data, and every message
// is one of the publishers' (the core NATS ones are not acknowledged).
func checkChaosStream(t *testing.T, stream []storedMsg, acks []ack) {
	t.Helper()
	published := func(a ack) storedMsg {
		if a.kind == "js" {
			return storedMsg{seq: a.seq, topic: a.topic, typ: "js", data: a.data}
		}
		return storedMsg{seq: a.seq, topic: a.topic, data: chaosData(a.data)}
	}
	bad := 0
	for _, a := range acks {
		if m, want := storedAt(stream, a.seq), published(a); m != want {
			if bad++; bad <= 5 {
				t.Errorf("acknowledged %s publish %q, seq %d: stored on %q with type %q and %d bytes, want on %q with type %q and %d bytes",
					a.kind, a.data, m.seq, m.topic, m.typ, len(m.data), want.topic, want.typ, len(want.data))
			}
		}
	}
	for _, m := range stream {
		key, _, _ := strings.Cut(m.data, " ")
		ok := m.seq == 1 && m.data == "first" ||
			strings.HasPrefix(m.data, "core-") && m.typ == "" ||
			strings.HasPrefix(m.data, "js-") && m.typ == "js" ||
			strings.HasPrefix(m.data, "h") && m.typ == "" && m.data == chaosData(key)
		if !ok || !slices.Contains(chaosTopics, m.topic) {
			if bad++; bad <= 5 {
				t.Errorf("stored message %d on %q with type %q and data %.40q was not published", m.seq, m.topic, m.typ, m.data)
			}
		}
	}
	if bad > 5 {
		t.Errorf("... %d differences in all", bad)
	}
}

// liveStartDiff checks where a client that started live began: its first event must come
// no later than the first acknowledged publish on its topics that began after its stream
// without a position was established. It describes the difference, "" when there is none,
// and reports whether there was such a publish to check against.
func liveStartDiff(c *resumer, acks []ack) (string, bool) {
	var bound *ack
	for i, a := range acks {
		if a.began.After(c.live) && matchAny(c.filters, a.topic) && (bound == nil || a.seq < bound.seq) {
			bound = &acks[i]
		}
	}
	switch {
	case bound == nil:
		return "", false
	case len(c.seqs) == 0:
		return fmt.Sprintf("no event, though seq %d on %s was published %s after its stream was established",
			bound.seq, bound.topic, bound.began.Sub(c.live)), true
	case c.seqs[0] > bound.seq:
		return fmt.Sprintf("first event seq %d, after seq %d on %s, published %s after its stream was established",
			c.seqs[0], bound.seq, bound.topic, bound.began.Sub(c.live)), true
	}
	return "", true
}
