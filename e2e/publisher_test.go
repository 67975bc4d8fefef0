package e2e

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// This file holds the publishers of the tests that publish while something else goes on:
// loops that publish every interval and retry a failed publish until it is acknowledged,
// and the list of acknowledged publishes the stream is checked against afterwards.

// syncList is a list that several goroutines append to.
type syncList[T any] struct {
	mu    sync.Mutex
	items []T
}

func (l *syncList[T]) add(v T) {
	l.mu.Lock()
	l.items = append(l.items, v)
	l.mu.Unlock()
}

// all returns a copy of the items.
func (l *syncList[T]) all() []T {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.items)
}

func (l *syncList[T]) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.items)
}

// ack is an acknowledged publish.
type ack struct {
	seq   uint64
	topic string
	data  string    // unique per logical publish (its key), when the test checks it
	kind  string    // "http" or "js"
	via   string    // the gateway's base URL (HTTP) or the NATS server's URL (JetStream) it came through
	began time.Time // when its first attempt began: it was not stored before
	at    time.Time
}

// ackList collects acknowledged publishes from several goroutines.
type ackList struct{ syncList[ack] }

// maxSeq is the highest sequence acknowledged so far.
func (l *ackList) maxSeq() uint64 {
	var m uint64
	for _, a := range l.all() {
		m = max(m, a.seq)
	}
	return m
}

// since counts the publishes acknowledged after t.
func (l *ackList) since(t time.Time) int {
	n := 0
	for _, a := range l.all() {
		if a.at.After(t) {
			n++
		}
	}
	return n
}

// times returns when the publishes of kind ("" for all) were acknowledged, in order.
func (l *ackList) times(kind string) []time.Time {
	var ts []time.Time
	for _, a := range l.all() {
		if kind == "" || a.kind == kind {
			ts = append(ts, a.at)
		}
	}
	slices.SortFunc(ts, time.Time.Compare)
	return ts
}

// randomID returns the id of an acknowledged publish of epoch chosen at random, "" while
// none is acknowledged.
func (l *ackList) randomID(epoch string) string {
	acks := l.all()
	if len(acks) == 0 {
		return ""
	}
	return formatID(epoch, acks[rand.IntN(len(acks))].seq)
}

// checkStored checks that every acknowledged publish is in the stream, on its topic
// and with its data, and that no publish was stored twice despite its retries.
func checkStored(t *testing.T, stream []storedMsg, acks []ack) {
	t.Helper()
	copies := map[string][]uint64{}
	for _, m := range stream {
		copies[m.data] = append(copies[m.data], m.seq)
	}
	missing := missingAcks(stream, acks)
	for _, a := range missing[:min(len(missing), 5)] {
		t.Errorf("acknowledged %s publish %q on %s (seq %d) is not in the stream: found %+v", a.kind, a.data, a.topic, a.seq, storedAt(stream, a.seq))
	}
	if len(missing) > 5 {
		t.Errorf("... %d acknowledged publishes missing in all", len(missing))
	}
	twice := 0
	for data, seqs := range copies {
		if len(seqs) > 1 && (strings.HasPrefix(data, "http-") || strings.HasPrefix(data, "js-")) {
			if twice++; twice <= 5 {
				t.Errorf("publish %q was stored %d times despite its key: seqs %v", data, len(seqs), seqs)
			}
		}
	}
}

// missingAcks returns the acknowledged publishes that are not in the stream at their
// sequence, on their topic and with their data.
func missingAcks(stream []storedMsg, acks []ack) []ack {
	bySeq := make(map[uint64]storedMsg, len(stream))
	for _, m := range stream {
		bySeq[m.seq] = m
	}
	var out []ack
	for _, a := range acks {
		if m, ok := bySeq[a.seq]; !ok || m.topic != a.topic || m.data != a.data {
			out = append(out, a)
		}
	}
	return out
}

// publisher runs publish loops, each on a goroutine of its own, until halted.
type publisher struct {
	acks     ackList
	failures atomic.Int64 // failed attempts, each retried
	errMu    sync.Mutex
	errs     map[string]int // the failed attempts by error
	stop     chan struct{}
	once     sync.Once
	wg       sync.WaitGroup
}

// newPublisher returns a publisher without loops; it is halted when the test ends.
func newPublisher(tb testing.TB) *publisher {
	p := &publisher{stop: make(chan struct{}), errs: map[string]int{}}
	tb.Cleanup(p.halt)
	return p
}

// start calls publish every interval until halted, retrying a failed publish (the same i,
// so the same key) until it is acknowledged; acknowledged ones go to acks.
func (p *publisher) start(interval time.Duration, publish func(i int) (ack, error)) {
	p.wg.Go(func() {
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for i := 0; ; i++ {
			var began time.Time
			for {
				select {
				case <-p.stop:
					return
				case <-tick.C:
				}
				if began.IsZero() {
					began = time.Now()
				}
				a, err := publish(i)
				if err == nil {
					a.began, a.at = began, time.Now()
					p.acks.add(a)
					break
				}
				p.failures.Add(1)
				p.errMu.Lock()
				p.errs[err.Error()]++
				p.errMu.Unlock()
			}
		}
	})
}

// startUnacked calls send every interval until halted: publishes nobody acknowledges.
func (p *publisher) startUnacked(interval time.Duration, send func(i int)) {
	p.wg.Go(func() {
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-p.stop:
				return
			case <-tick.C:
			}
			send(i)
		}
	})
}

// errors describes the failed attempts: the most frequent errors first, with their counts.
func (p *publisher) errors(n int) string {
	p.errMu.Lock()
	defer p.errMu.Unlock()
	msgs := slices.Collect(maps.Keys(p.errs))
	slices.SortFunc(msgs, func(a, b string) int { return cmp.Or(p.errs[b]-p.errs[a], strings.Compare(a, b)) })
	var out []string
	for _, m := range msgs[:min(n, len(msgs))] {
		out = append(out, fmt.Sprintf("%d× %s", p.errs[m], m))
	}
	return strings.Join(out, "; ")
}

// halt stops the loops and waits for them. It is idempotent.
func (p *publisher) halt() {
	p.once.Do(func() {
		close(p.stop)
		p.wg.Wait()
	})
}

// waitAcks waits until n publishes were acknowledged since since.
func (p *publisher) waitAcks(tb testing.TB, timeout time.Duration, n int, since time.Time, what string) {
	tb.Helper()
	pollUntil(tb, timeout, fmt.Sprintf("%d acknowledged publishes %s", n, what), func() bool {
		return p.acks.since(since) >= n
	})
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
		var e errorResult
		json.NewDecoder(resp.Body).Decode(&e)
		return 0, fmt.Errorf("status %d from %s: %s", resp.StatusCode, base, e.Error)
	}
	var r publishResult
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return 0, err
	}
	return r.Seq, nil
}

// startLoad keeps publishing through a set of gateways until halted: httpWorkers HTTP
// publishers that send each publish to the next of bases in turn and retry a failed one,
// with the same Idempotency-Key, through the next; and, when natsURLs is not empty, a
// JetStream publisher with a Nats-Msg-Id connected to them (the first one first), retrying
// through whichever server its connection reaches. Each publishes on one of topics every
// interval, with its key as data. The load is halted when the test ends.
func startLoad(tb testing.TB, bases []string, httpWorkers int, natsURLs string, topics []string, interval time.Duration) *publisher {
	tb.Helper()
	tag := rand.Uint32() // keys unique to this load, should another share the stream
	var js jetstream.JetStream
	var nc *nats.Conn
	if natsURLs != "" {
		var err error
		nc, err = nats.Connect(natsURLs, nats.Name("e2e-cluster-publisher"), nats.DontRandomize(),
			nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
		if err != nil {
			tb.Fatalf("connect to %s: %v", natsURLs, err)
		}
		tb.Cleanup(nc.Close) // after the halt, registered later
		if js, err = jetstream.New(nc); err != nil {
			tb.Fatalf("jetstream: %v", err)
		}
	}
	clients := make([]*http.Client, httpWorkers)
	for w := range clients {
		clients[w] = &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 4}}
		tb.Cleanup(clients[w].CloseIdleConnections) // after the halt too
	}
	p := newPublisher(tb)
	for w, client := range clients {
		node := w
		p.start(interval, func(i int) (ack, error) {
			key := fmt.Sprintf("http-%08x-%d-%d", tag, w, i)
			topic := topics[(i*7+w)%len(topics)]
			base := bases[node%len(bases)]
			node++
			seq, err := httpPublish(context.Background(), client, base, topic, key, key)
			return ack{seq: seq, topic: topic, data: key, kind: "http", via: base}, err
		})
	}
	if js != nil {
		p.start(interval, func(i int) (ack, error) {
			id := fmt.Sprintf("js-%08x-%d", tag, i)
			topic := topics[(i*5+1)%len(topics)]
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			a, err := js.PublishMsg(ctx, natsMsg(topic, "", id, id))
			if err != nil {
				return ack{}, err
			}
			return ack{seq: a.Sequence, topic: topic, data: id, kind: "js", via: nc.ConnectedUrl()}, nil
		})
	}
	return p
}
