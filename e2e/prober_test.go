package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// This file holds the probers of the partition test: loops that send a request to a node
// at a steady pace, as a load balancer's health check or a steady publisher would, and
// record every answer and how long it took.

// probeInterval is the pace of the probers.
const probeInterval = 250 * time.Millisecond

// probe is one request of a prober and its answer.
type probe struct {
	sent       time.Time
	took       time.Duration
	status     int    // 0: no answer within the prober's timeout
	retryAfter string // its Retry-After header
	seq        uint64 // the sequence of an acknowledged publish
	key        string // the Idempotency-Key (and data) of a publish
}

// answered is when the answer came, or the prober gave up.
func (p probe) answered() time.Time { return p.sent.Add(p.took) }

// prober sends a request every probeInterval until halted, each on a goroutine of its own,
// so that one that hangs delays no other.
type prober struct {
	probes  syncList[probe]
	client  *http.Client
	timeout time.Duration
	send    func(ctx context.Context, client *http.Client, i int) probe
	stop    chan struct{}
	once    sync.Once
	loop    sync.WaitGroup
	calls   sync.WaitGroup
}

// startProber calls send every probeInterval, with a context that ends after timeout,
// until halted. It is halted when the test ends.
func startProber(tb testing.TB, timeout time.Duration, send func(ctx context.Context, client *http.Client, i int) probe) *prober {
	p := &prober{
		client:  &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 16}},
		timeout: timeout,
		send:    send,
		stop:    make(chan struct{}),
	}
	p.loop.Go(p.run)
	tb.Cleanup(p.halt)
	return p
}

func (p *prober) run() {
	tick := time.NewTicker(probeInterval)
	defer tick.Stop()
	for i := 0; ; i++ {
		p.calls.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), p.timeout)
			defer cancel()
			pr := p.send(ctx, p.client, i)
			pr.took = time.Since(pr.sent)
			p.probes.add(pr)
		})
		select {
		case <-p.stop:
			return
		case <-tick.C:
		}
	}
}

// stopSending sends no more requests; those under way go on. It is idempotent.
func (p *prober) stopSending() {
	p.once.Do(func() { close(p.stop) })
	p.loop.Wait()
}

// halt stops sending and waits for every answer. It is idempotent.
func (p *prober) halt() {
	p.stopSending()
	p.calls.Wait()
	p.client.CloseIdleConnections()
}

// sentWithin returns the probes sent in [from, to), in the order they were sent.
func (p *prober) sentWithin(from, to time.Time) []probe {
	var out []probe
	for _, pr := range p.probes.all() {
		if !pr.sent.Before(from) && pr.sent.Before(to) {
			out = append(out, pr)
		}
	}
	slices.SortFunc(out, func(a, b probe) int { return a.sent.Compare(b.sent) })
	return out
}

// probeReady probes GET /readyz on n.
func probeReady(n *clusterNode) func(context.Context, *http.Client, int) probe {
	return func(ctx context.Context, client *http.Client, _ int) probe {
		pr := probe{sent: time.Now()}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.base+"/readyz", nil)
		if err != nil {
			return pr
		}
		resp, err := client.Do(req)
		if err != nil {
			return pr
		}
		defer resp.Body.Close()
		if _, err := io.Copy(io.Discard, resp.Body); err == nil {
			pr.status = resp.StatusCode
		}
		return pr
	}
}

// probePublish publishes on topic through n, each publish with a key of its own (tag and
// its number) as Idempotency-Key and data.
func probePublish(n *clusterNode, topic, tag string) func(context.Context, *http.Client, int) probe {
	return func(ctx context.Context, client *http.Client, i int) probe {
		pr := probe{sent: time.Now(), key: fmt.Sprintf("http-%s-%d", tag, i)}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.base+"/publish/"+topic, strings.NewReader(pr.key))
		if err != nil {
			return pr
		}
		req.Header.Set("Idempotency-Key", pr.key)
		resp, err := client.Do(req)
		if err != nil {
			return pr
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return pr
		}
		pr.status = resp.StatusCode
		pr.retryAfter = resp.Header.Get("Retry-After")
		var r publishResult
		if pr.status == http.StatusOK && json.Unmarshal(body, &r) == nil {
			pr.seq = r.Seq
		}
		return pr
	}
}

// acked returns the probes of a publish prober that were acknowledged, as acks on topic.
func (p *prober) acked(topic, via string) []ack {
	var out []ack
	for _, pr := range p.probes.all() {
		if pr.status == http.StatusOK {
			out = append(out, ack{seq: pr.seq, topic: topic, data: pr.key, kind: "http", via: via, began: pr.sent, at: pr.answered()})
		}
	}
	return out
}
