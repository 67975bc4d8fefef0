package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/natsse/natsse/sseformat"
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
// gateway is killed with SIGKILL and restarted halfway. Then every client's events must
// equal the stream's matching events after its first resume point (no gap, no duplicate,
// in order), and every acknowledged publish must be in the stream.
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

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	stopPublishing := make(chan struct{})
	var acked ackLog
	var pubs sync.WaitGroup
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	defer client.CloseIdleConnections()

	// Publishers: two over HTTP and one over JetStream, each retrying with the same key
	// until acknowledged; one core NATS publisher, fire and forget.
	for w := 0; w < 2; w++ {
		pubs.Add(1)
		go func() {
			defer pubs.Done()
			publishLoop(stopPublishing, scale.interval, func(i int) (uint64, string, error) {
				// A retry must repeat the publish exactly: same key, same topic.
				topic := chaosTopics[(i*7+w)%len(chaosTopics)]
				// Sizes up to 8 KiB, so that a slow reader's socket buffers fill and its queue
				// overflows.
				data := fmt.Sprintf("h%d-%d ", w, i) + strings.Repeat("x", (i*7919)%(8<<10))
				res, err := httpPublish(ctx, client, base, topic, fmt.Sprintf("http-%d-%d", w, i), data)
				return res, topic, err
			}, &acked)
		}()
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
	pubs.Add(2)
	go func() {
		defer pubs.Done()
		publishLoop(stopPublishing, scale.interval, func(i int) (uint64, string, error) {
			topic := chaosTopics[(i*5+3)%len(chaosTopics)]
			m := natsMsg(topic, "js", fmt.Sprintf("js-%d", i), fmt.Sprintf("js-%d", i))
			pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
			defer pcancel()
			ack, err := js.PublishMsg(pctx, m)
			if err != nil {
				return 0, topic, err
			}
			return ack.Sequence, topic, nil
		}, &acked)
	}()
	go func() {
		defer pubs.Done()
		tick := time.NewTicker(scale.interval)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stopPublishing:
				return
			case <-tick.C:
			}
			nc.Publish("sse."+chaosTopics[rand.IntN(len(chaosTopics))], []byte(fmt.Sprintf("core-%d", i)))
		}
	}()

	// Clients.
	clients := make([]*chaosClient, scale.clients)
	var running sync.WaitGroup
	finish := make(chan struct{}) // closed when clients should catch up to the end and stop
	for i := range clients {
		c := &chaosClient{
			base:    base,
			epoch:   epoch,
			filters: chaosFilters[rand.IntN(len(chaosFilters))],
			slow:    i%10 == 0,
			http:    &http.Client{Transport: &http.Transport{}},
		}
		if c.slow {
			c.filters = []string{"c.>"}
			c.http.Transport = &http.Transport{DialContext: smallReceiveBuffer().DialContext}
		}
		switch r := rand.IntN(10); {
		case r < 2:
			c.start = "" // live: checked from the first event it receives
		case r < 4:
			c.start = "earliest"
		default:
			c.start = acked.randomID(epoch) // "" until something was acknowledged
			if c.start == "" {
				c.start = "earliest"
			}
		}
		clients[i] = c
		running.Add(1)
		go func() {
			defer running.Done()
			c.run(ctx, finish)
		}()
	}

	// Halfway, kill the gateway and start it again on the same data dir and addresses.
	killAt := time.NewTimer(scale.duration / 2)
	select {
	case <-killAt.C:
	case <-ctx.Done():
	}
	cutBeforeKill := g.stats(t).SlowCut
	g.kill(t)
	t.Logf("gateway killed after %s; %d publishes acknowledged, %d slow clients cut off", scale.duration/2, acked.count(), cutBeforeKill)
	g = startGatewayIn(t, dir, settings...)

	endAt := time.NewTimer(scale.duration / 2)
	select {
	case <-endAt.C:
	case <-ctx.Done():
	}
	close(stopPublishing)
	pubs.Wait()

	// The reference: the stream itself, read directly.
	_, refJS := g.natsConn(t)
	stream := readStream(t, refJS)
	t.Logf("stream holds %d events; %d acknowledged publishes", len(stream), acked.count())

	// Crash safety: every acknowledged publish is stored, on its topic.
	bySeq := make(map[uint64]storedMsg, len(stream))
	for _, m := range stream {
		bySeq[m.seq] = m
	}
	for _, a := range acked.all() {
		if m, ok := bySeq[a.seq]; !ok || m.topic != a.topic {
			t.Errorf("acknowledged publish seq %d on %s is not in the stream (found %+v)", a.seq, a.topic, m)
		}
	}

	// Let every client catch up to the end of the stream, then compare.
	for _, c := range clients {
		c.target = lastMatching(stream, c.filters)
	}
	close(finish)
	done := make(chan struct{})
	go func() { running.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		cancel()
		<-done
		t.Fatal("clients did not catch up within 2 minutes")
	}
	reconnects, events := 0, 0
	for i, c := range clients {
		reconnects += c.connects - 1
		events += len(c.seqs)
		if c.err != nil {
			t.Errorf("client %d %v: %v", i, c.filters, c.err)
			continue
		}
		want := expectedSeqs(stream, c.filters, c.startSeq(t, epoch))
		if !slices.Equal(c.seqs, want) {
			j := firstDifference(c.seqs, want)
			t.Errorf("client %d %v from %q (slow=%v): received %d events, want %d; first difference at %d: got %v, want %v",
				i, c.filters, c.start, c.slow, len(c.seqs), len(want), j, window(c.seqs, j), window(want, j))
		}
	}
	cut := cutBeforeKill + g.stats(t).SlowCut
	t.Logf("%d clients received %d events over %d reconnects; slow clients were cut off %d times",
		len(clients), events, reconnects, cut)
	if cut == 0 {
		t.Error("no client was ever cut off: the slow-client path was not exercised")
	}
}

// ack is an acknowledged publish.
type ack struct {
	seq   uint64
	topic string
}

// ackLog collects acknowledged publishes from several goroutines.
type ackLog struct{ syncList[ack] }

func (l *ackLog) randomID(epoch string) string {
	acks := l.all()
	if len(acks) == 0 {
		return ""
	}
	return eventID(epoch, acks[rand.IntN(len(acks))].seq)
}

// publishLoop calls publish every interval until stop is closed, retrying a failed publish
// (the same i, so the same idempotency key) until it is acknowledged.
func publishLoop(stop <-chan struct{}, interval time.Duration, publish func(i int) (uint64, string, error), acked *ackLog) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for i := 0; ; i++ {
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			seq, topic, err := publish(i)
			if err == nil {
				acked.add(ack{seq: seq, topic: topic})
				break
			}
		}
	}
}

// httpPublish publishes over HTTP with an Idempotency-Key and returns the stored sequence.
func httpPublish(ctx context.Context, client *http.Client, base, topic, key, data string) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/publish/"+topic, strings.NewReader(data))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Idempotency-Key", key)
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("status %d", resp.StatusCode)
	}
	var r publishResult
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return 0, err
	}
	return r.Seq, nil
}

// chaosClient is one subscriber that drops and resumes at random.
type chaosClient struct {
	base    string
	epoch   string
	filters []string
	slow    bool // reads one event per 5ms through a small socket buffer, and so overflows
	start   string
	http    *http.Client
	target  uint64 // set before finish is closed: the last matching sequence in the stream

	seqs     []uint64
	last     string
	connects int
	err      error
}

func (c *chaosClient) run(ctx context.Context, finish <-chan struct{}) {
	defer c.http.CloseIdleConnections()
	retry := time.NewTicker(50 * time.Millisecond)
	defer retry.Stop()
	for ctx.Err() == nil && c.err == nil {
		if c.caughtUp(finish) {
			return
		}
		budget := 10 + rand.IntN(400) // events before dropping the connection
		if c.slow {
			budget = 1 << 30 // a slow client keeps its stream until the gateway cuts it off
		}
		ended, err := c.session(ctx, finish, budget)
		if err != nil {
			c.err = err
			return
		}
		if ended { // refused, cut off or the gateway went away: wait a moment, then resume
			select {
			case <-retry.C:
			case <-ctx.Done():
			}
		}
	}
}

// session opens one stream from the client's position and reads up to budget events. It
// reports whether the stream ended on the gateway's side (or could not be opened).
func (c *chaosClient) session(ctx context.Context, finish <-chan struct{}, budget int) (ended bool, err error) {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	q := url.Values{"topic": c.filters}
	from := c.last
	if from == "" && c.connects == 0 {
		from = c.start
	}
	header := ""
	if from != "" {
		if rand.IntN(2) == 0 || from == "earliest" {
			q.Set("last_event_id", from)
		} else {
			header = from
		}
	}
	req, _ := http.NewRequestWithContext(sctx, http.MethodGet, c.base+"/events?"+q.Encode(), nil)
	if header != "" {
		req.Header.Set("Last-Event-ID", header)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return true, nil // the gateway is restarting
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("GET /events: status %d", resp.StatusCode)
	}
	c.connects++
	var pace *time.Ticker
	if c.slow {
		pace = time.NewTicker(5 * time.Millisecond)
		defer pace.Stop()
	}
	dec := sseformat.NewDecoder(bufio.NewReaderSize(resp.Body, 1024))
	// A client that already has the last event waits in Next; the keep-alive wakes it.
	dec.OnComment(func(string) {
		if c.caughtUp(finish) {
			cancel()
		}
	})
	for n := 0; ; n++ {
		finishing := isClosed(finish)
		if n >= budget && !finishing { // when catching up at the end, read on
			return false, nil
		}
		if c.caughtUp(finish) {
			return false, nil
		}
		if pace != nil && !finishing {
			<-pace.C
		}
		ev, err := dec.Next()
		if err != nil {
			if ctx.Err() != nil || c.caughtUp(finish) {
				return false, nil
			}
			if errors.Is(err, sseformat.ErrTooLarge) {
				return false, err
			}
			return true, nil
		}
		if ev.Type == "gap" {
			return false, fmt.Errorf("unexpected gap event: %s", ev.Data)
		}
		epoch, seqText, ok := strings.Cut(ev.ID, "-")
		seq, perr := strconv.ParseUint(seqText, 10, 64)
		if !ok || perr != nil || epoch != c.epoch {
			return false, fmt.Errorf("event id %q: not of epoch %s", ev.ID, c.epoch)
		}
		c.seqs = append(c.seqs, seq)
		c.last = ev.ID
	}
}

// caughtUp reports whether the run is finishing and the client has the last event of its
// topics. target is read only once finish is closed, after which it does not change.
func (c *chaosClient) caughtUp(finish <-chan struct{}) bool {
	if !isClosed(finish) {
		return false
	}
	return c.target == 0 || (len(c.seqs) > 0 && c.seqs[len(c.seqs)-1] >= c.target)
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// startSeq is the sequence after which the client's events must match the stream exactly.
func (c *chaosClient) startSeq(tb testing.TB, epoch string) uint64 {
	switch {
	case c.start == "earliest":
		return 0
	case c.start == "":
		if len(c.seqs) == 0 {
			return 0
		}
		return c.seqs[0] - 1
	}
	_, seqText, _ := strings.Cut(c.start, "-")
	seq, err := strconv.ParseUint(seqText, 10, 64)
	if err != nil {
		tb.Fatalf("start id %q", c.start)
	}
	return seq
}

func expectedSeqs(stream []storedMsg, filters []string, after uint64) []uint64 {
	var out []uint64
	for _, m := range stream {
		if m.seq > after && matchAny(filters, m.topic) {
			out = append(out, m.seq)
		}
	}
	return out
}

func lastMatching(stream []storedMsg, filters []string) uint64 {
	for i := len(stream) - 1; i >= 0; i-- {
		if matchAny(filters, stream[i].topic) {
			return stream[i].seq
		}
	}
	return 0
}

func firstDifference(a, b []uint64) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func window(s []uint64, i int) []uint64 {
	return s[max(i-3, 0):min(i+3, len(s))]
}
