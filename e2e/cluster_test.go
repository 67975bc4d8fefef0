package e2e

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/natsse/natsse/sseformat"
)

// This file holds the harness of the tests of clustered deployments: three gateways
// forming an embedded NATS cluster, or gateways sharing an existing NATS deployment (as
// clients, or as leaf nodes). The tests themselves are in cluster_*_test.go.

// clusterStartTimeout bounds a cluster node's start: the nodes wait for each other, and
// the machine may be busy.
const clusterStartTimeout = 90 * time.Second

// clusterSettings are the settings of every gateway in these tests: clients are told to
// reconnect quickly, and idle streams carry a keep-alive every second.
var clusterSettings = []string{"GATEWAY_RETRY=100ms", "GATEWAY_KEEPALIVE=1s"}

// clusterRecoveryTimeout bounds the wait for every client to receive events again after a
// node went down: far more than the few seconds a failover takes.
const clusterRecoveryTimeout = 30 * time.Second

// clusterStreamName is the gateways' stream (GATEWAY_STREAM's default).
const clusterStreamName = "NATSSE"

// clusterFreePorts returns n distinct ports on 127.0.0.1 that were free a moment ago. They
// are chosen below the kernel's ephemeral range, so that neither an outgoing connection nor
// a listener on port 0 takes one while the node it belongs to is down for a restart.
func clusterFreePorts(tb testing.TB, n int) []int {
	tb.Helper()
	low, high := 10000, clusterEphemeralLow()
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	ports := make([]int, 0, n)
	for tries := 0; len(ports) < n; tries++ {
		if tries > 10000 {
			tb.Fatalf("found only %d free ports of %d", len(ports), n)
		}
		addr := "127.0.0.1:0"
		if high-low >= 1000 {
			addr = fmt.Sprintf("127.0.0.1:%d", low+rand.IntN(high-low))
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// clusterEphemeralLow is the first port of the kernel's ephemeral range.
func clusterEphemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 32768
	}
	p, err := strconv.Atoi(f[0])
	if err != nil {
		return 32768
	}
	return p
}

// clusterNode is one gateway of an embedded cluster. Its addresses are fixed, so that a
// restarted node is found where it was; its process changes with each start.
type clusterNode struct {
	name     string
	dir      string
	env      []string // its settings, the same on every start
	httpAddr string
	base     string // http://host:port
	natsURL  string // nats://host:port
	http     *http.Client
	proc     *gatewayProc // the current process; replaced by the test goroutine only

	startFailures []string       // why its processes gave up starting, if they did
	starts        *clusterStarts // where to report them too
	peers         []*clusterNode // every node of its cluster, itself included
}

// clusterStarts collects the failed starts of the nodes of several clusters.
type clusterStarts = syncList[string]

// clusterNewNodes prepares n cluster nodes with the same routes, each with its own data
// dir and ports, and a stream with n replicas. Their processes are not started: set extra
// settings in env first if needed, then launch them. Failed starts are added to starts.
func clusterNewNodes(tb testing.TB, n int, starts *clusterStarts) []*clusterNode {
	tb.Helper()
	ports := clusterFreePorts(tb, 3*n)
	routes := make([]string, n)
	for i := range n {
		routes[i] = fmt.Sprintf("nats://127.0.0.1:%d", ports[3*i])
	}
	nodes := make([]*clusterNode, n)
	for i := range n {
		nd := &clusterNode{
			name:     fmt.Sprintf("n%d", i+1),
			dir:      tb.TempDir(),
			httpAddr: fmt.Sprintf("127.0.0.1:%d", ports[3*i+1]),
			natsURL:  fmt.Sprintf("nats://127.0.0.1:%d", ports[3*i+2]),
			http:     &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 8}, Timeout: 30 * time.Second},
		}
		nd.base = "http://" + nd.httpAddr
		nd.env = append(slices.Clone(clusterSettings),
			"GATEWAY_SERVER_NAME="+nd.name,
			"GATEWAY_CLUSTER_NAME=natsse-e2e",
			fmt.Sprintf("GATEWAY_CLUSTER_ADDR=127.0.0.1:%d", ports[3*i]),
			"GATEWAY_CLUSTER_ROUTES="+strings.Join(routes, ","),
			fmt.Sprintf("GATEWAY_STREAM_REPLICAS=%d", n),
			"GATEWAY_HTTP_ADDR="+nd.httpAddr,
			"GATEWAY_NATS_ADDR="+strings.TrimPrefix(nd.natsURL, "nats://"),
		)
		tb.Cleanup(nd.http.CloseIdleConnections)
		nodes[i] = nd
	}
	for _, nd := range nodes {
		nd.peers = nodes
		nd.starts = starts
	}
	return nodes
}

// launch starts the node's process without waiting for it. When the test ends, every node
// of the cluster still running is stopped at once.
func (n *clusterNode) launch(tb testing.TB) {
	tb.Helper()
	n.proc = launchGateway(tb, n.dir, n.env...)
	tb.Cleanup(func() { clusterStopAll(tb, n.peers) })
}

// clusterStopAll sends SIGTERM to every running node, then waits for them: stopped one
// after the other, the last node would wait for a quorum that has gone.
func clusterStopAll(tb testing.TB, nodes []*clusterNode) {
	var running []*gatewayProc
	for _, n := range nodes {
		if n.proc != nil && !n.proc.hasExited() {
			n.http.CloseIdleConnections()
			if n.proc.client != nil {
				n.proc.client.CloseIdleConnections()
			}
			n.proc.cmd.Process.Signal(syscall.SIGTERM)
			running = append(running, n.proc)
		}
	}
	for _, g := range running {
		select {
		case <-g.exited:
		case <-time.After(stopTimeout):
			tb.Errorf("gateway %s did not stop within %s of SIGTERM", g.httpAddr, stopTimeout)
		}
	}
}

// clusterMaxStartFailures bounds the relaunches of a node that gives up starting.
const clusterMaxStartFailures = 3

// relaunchIfFailed launches the node again, as a supervisor would, if its process gave up
// starting and exited; the failure is kept in startFailures. It fails the test when the
// process exited otherwise, or failed too often.
func (n *clusterNode) relaunchIfFailed(tb testing.TB) {
	tb.Helper()
	if !n.proc.hasExited() {
		return
	}
	failed := n.proc.log.entries(func(e logEntry) bool { return e.msg() == "gateway failed to start" })
	if len(failed) == 0 || len(n.startFailures) >= clusterMaxStartFailures {
		tb.Fatalf("node %s exited with code %d while starting:\n%s", n.name, n.proc.exitCode, n.proc.log.tail(40))
	}
	msg := fmt.Sprint(failed[0]["err"])
	n.startFailures = append(n.startFailures, msg)
	n.starts.add(fmt.Sprintf("%s: node %s: %s", tb.Name(), n.name, msg))
	tb.Logf("node %s gave up starting and exited (%q); launching it again", n.name, msg)
	n.launch(tb)
}

// started reports whether the node's current process has logged "gateway started".
func (n *clusterNode) started() bool {
	return len(n.proc.log.entries(func(e logEntry) bool { return e.msg() == "gateway started" })) > 0
}

// clusterWaitStarted waits until every node has started, launching again those that give
// up starting meanwhile (see relaunchIfFailed).
func clusterWaitStarted(tb testing.TB, nodes ...*clusterNode) {
	tb.Helper()
	deadline := time.Now().Add(clusterStartTimeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		waiting := 0
		for _, n := range nodes {
			if !n.started() {
				waiting++
				n.relaunchIfFailed(tb)
			}
		}
		if waiting == 0 {
			break
		}
		if time.Now().After(deadline) {
			for _, n := range nodes {
				if !n.started() {
					tb.Errorf("node %s did not start within %s:\n%s", n.name, clusterStartTimeout, n.proc.log.tail(20))
				}
			}
			tb.FailNow()
		}
		<-tick.C
	}
	for _, n := range nodes {
		n.waitStarted(tb)
	}
}

// waitStarted waits for the node's "gateway started" line and checks its address.
func (n *clusterNode) waitStarted(tb testing.TB) {
	tb.Helper()
	if err := n.proc.waitStarted(clusterStartTimeout); err != nil {
		tb.Fatalf("node %s did not start: %v\n%s", n.name, err, n.proc.log.tail(40))
	}
	if n.proc.httpAddr != n.httpAddr {
		tb.Fatalf("node %s serves HTTP on %s, want %s", n.name, n.proc.httpAddr, n.httpAddr)
	}
}

// start launches the node and waits until it has started.
func (n *clusterNode) start(tb testing.TB) {
	tb.Helper()
	n.launch(tb)
	clusterWaitStarted(tb, n)
}

// clusterStart launches every node at once (they wait for each other), waits for all to
// start, then to be ready.
func clusterStart(tb testing.TB, nodes []*clusterNode) {
	tb.Helper()
	for _, n := range nodes {
		n.launch(tb)
	}
	clusterWaitStarted(tb, nodes...)
	clusterWaitReady(tb, time.Minute, nodes...)
}

// request sends a request to the node; err when it does not answer.
func (n *clusterNode) request(ctx context.Context, method, path string, body io.Reader, header http.Header) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, n.base+path, body)
	if err != nil {
		return nil, nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := n.http.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

// status GETs path and returns the status, or 0 when the node does not answer.
func (n *clusterNode) status(ctx context.Context, path string) int {
	resp, _, err := n.request(ctx, http.MethodGet, path, nil, nil)
	if err != nil {
		return 0
	}
	return resp.StatusCode
}

// clusterWaitReady waits until /readyz answers 200 on every node.
func clusterWaitReady(tb testing.TB, timeout time.Duration, nodes ...*clusterNode) {
	tb.Helper()
	for _, n := range nodes {
		pollUntil(tb, timeout, "/readyz 200 on "+n.name, func() bool {
			return n.status(tb.Context(), "/readyz") == http.StatusOK
		})
	}
}

// clusterURLs returns the NATS URLs of nodes, comma-separated.
func clusterURLs(nodes []*clusterNode) string {
	urls := make([]string, len(nodes))
	for i, n := range nodes {
		urls[i] = n.natsURL
	}
	return strings.Join(urls, ",")
}

// clusterJS connects to the cluster (any node, reconnecting to the others) for the test's
// own JetStream requests. The connection is closed when the test ends.
func clusterJS(tb testing.TB, urls string) jetstream.JetStream {
	tb.Helper()
	nc, err := nats.Connect(urls, nats.Name("e2e-cluster-check"), nats.MaxReconnects(-1),
		nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		tb.Fatalf("connect to %s: %v", urls, err)
	}
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatalf("jetstream: %v", err)
	}
	return js
}

// clusterStreamInfo asks JetStream about the gateways' stream.
func clusterStreamInfo(ctx context.Context, js jetstream.JetStream) (*jetstream.StreamInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, clusterStreamName)
	if err != nil {
		return nil, err
	}
	return s.Info(ctx)
}

// clusterWaitHealthy waits until the stream has a leader and replicas replicas, all
// current: a node that came back has caught up.
func clusterWaitHealthy(tb testing.TB, js jetstream.JetStream, replicas int, timeout time.Duration) {
	tb.Helper()
	var last string
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		info, err := clusterStreamInfo(tb.Context(), js)
		switch {
		case err != nil:
			last = err.Error()
		case info.Cluster == nil || info.Cluster.Leader == "":
			last = "no leader"
		case len(info.Cluster.Replicas) != replicas-1:
			last = fmt.Sprintf("leader %s with %d other replicas", info.Cluster.Leader, len(info.Cluster.Replicas))
		default:
			healthy := true
			for _, p := range info.Cluster.Replicas {
				if !p.Current || p.Offline {
					healthy = false
					last = fmt.Sprintf("replica %s current=%v offline=%v lag=%d", p.Name, p.Current, p.Offline, p.Lag)
				}
			}
			if healthy {
				return
			}
		}
		if time.Now().After(deadline) {
			tb.Fatalf("stream not healthy after %s: %s", timeout, last)
		}
		<-tick.C
	}
}

// clusterReadStream reads every message of the gateways' stream directly over JetStream:
// the reference the events delivered over SSE are compared with.
func clusterReadStream(tb testing.TB, js jetstream.JetStream) []storedMsg {
	tb.Helper()
	return readStreamNamed(tb, js, clusterStreamName)
}

// clusterLeader returns the node that leads the stream.
func clusterLeader(tb testing.TB, js jetstream.JetStream, nodes []*clusterNode) *clusterNode {
	tb.Helper()
	var leader *clusterNode
	pollUntil(tb, 30*time.Second, "a stream leader", func() bool {
		info, err := clusterStreamInfo(tb.Context(), js)
		if err != nil || info.Cluster == nil {
			return false
		}
		for _, n := range nodes {
			if n.name == info.Cluster.Leader {
				leader = n
				return true
			}
		}
		return false
	})
	return leader
}

// clusterSeqOf parses an event id of epoch and returns its sequence.
func clusterSeqOf(id, epoch string) (uint64, error) {
	e, s, ok := strings.Cut(id, "-")
	seq, err := strconv.ParseUint(s, 10, 64)
	if !ok || err != nil || e != epoch {
		return 0, fmt.Errorf("event id %q: not an id of epoch %s", id, epoch)
	}
	return seq, nil
}

// clusterAck is an acknowledged publish.
type clusterAck struct {
	seq   uint64
	topic string
	data  string // unique per logical publish: its Idempotency-Key or Nats-Msg-Id
	kind  string // "http" or "js"
	at    time.Time
}

// clusterAcks collects acknowledged publishes from several goroutines.
type clusterAcks struct{ syncList[clusterAck] }

// maxSeq is the highest sequence acknowledged so far.
func (l *clusterAcks) maxSeq() uint64 {
	var m uint64
	for _, a := range l.all() {
		m = max(m, a.seq)
	}
	return m
}

// since counts the publishes acknowledged after t.
func (l *clusterAcks) since(t time.Time) int {
	n := 0
	for _, a := range l.all() {
		if a.at.After(t) {
			n++
		}
	}
	return n
}

// times returns when the publishes of kind ("" for all) were acknowledged, in order.
func (l *clusterAcks) times(kind string) []time.Time {
	var ts []time.Time
	for _, a := range l.all() {
		if kind == "" || a.kind == kind {
			ts = append(ts, a.at)
		}
	}
	slices.SortFunc(ts, time.Time.Compare)
	return ts
}

// clusterLoad keeps publishing through a set of gateways until halted: HTTP publishers
// that send each publish to the next gateway in turn and retry a failed one, with the same
// Idempotency-Key, through the next; and, when NATS URLs are given, a JetStream publisher
// with a Nats-Msg-Id, retrying through whichever server its connection reaches.
type clusterLoad struct {
	acks     clusterAcks
	failures atomic.Int64 // failed attempts, each retried
	stop     chan struct{}
	once     sync.Once
	wg       sync.WaitGroup
}

// clusterStartLoad starts httpWorkers HTTP publishers over bases and, if natsURLs is not
// empty, a JetStream publisher connected to them (the first one first). Each publishes on
// a random one of topics every interval. The load is halted when the test ends.
func clusterStartLoad(tb testing.TB, bases []string, httpWorkers int, natsURLs string, topics []string, interval time.Duration) *clusterLoad {
	tb.Helper()
	l := &clusterLoad{stop: make(chan struct{})}
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
		if js, err = jetstream.New(nc); err != nil {
			nc.Close()
			tb.Fatalf("jetstream: %v", err)
		}
	}
	for w := range httpWorkers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			client := &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 4}}
			defer client.CloseIdleConnections()
			node := w
			l.loop(interval, func(i int) (clusterAck, error) {
				key := fmt.Sprintf("http-%08x-%d-%d", tag, w, i)
				topic := topics[(i*7+w)%len(topics)]
				base := bases[node%len(bases)]
				node++
				seq, err := httpPublish(context.Background(), client, base, topic, key, key)
				return clusterAck{seq: seq, topic: topic, data: key, kind: "http"}, err
			})
		}()
	}
	if js != nil {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			defer nc.Close()
			l.loop(interval, func(i int) (clusterAck, error) {
				id := fmt.Sprintf("js-%08x-%d", tag, i)
				topic := topics[(i*5+1)%len(topics)]
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				defer cancel()
				ack, err := js.PublishMsg(ctx, natsMsg(topic, "", id, id))
				if err != nil {
					return clusterAck{}, err
				}
				return clusterAck{seq: ack.Sequence, topic: topic, data: id, kind: "js"}, nil
			})
		}()
	}
	tb.Cleanup(l.halt)
	return l
}

// loop calls publish every interval until halted, retrying a failed publish (the same i,
// so the same key) until it is acknowledged.
func (l *clusterLoad) loop(interval time.Duration, publish func(i int) (clusterAck, error)) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for i := 0; ; i++ {
		for {
			select {
			case <-l.stop:
				return
			case <-tick.C:
			}
			a, err := publish(i)
			if err == nil {
				a.at = time.Now()
				l.acks.add(a)
				break
			}
			l.failures.Add(1)
		}
	}
}

// halt stops the publishers and waits for them. It is idempotent.
func (l *clusterLoad) halt() {
	l.once.Do(func() {
		close(l.stop)
		l.wg.Wait()
	})
}

// waitAcks waits until n more publishes than before were acknowledged since since.
func (l *clusterLoad) waitAcks(tb testing.TB, timeout time.Duration, n int, since time.Time, what string) {
	tb.Helper()
	pollUntil(tb, timeout, fmt.Sprintf("%d acknowledged publishes %s", n, what), func() bool {
		return l.acks.since(since) >= n
	})
}

// clusterSubscriber is an SSE client of a cluster: it reads from one gateway and, when that
// stream ends or the gateway cannot be reached, moves to the next one and resumes there
// from its last id.
type clusterSubscriber struct {
	bases   []string // the gateways' base URLs
	node    int      // the index of the gateway it reads from (next)
	filters []string
	epoch   string
	from    string // the id it first resumes after
	http    *http.Client
	target  uint64 // the last matching sequence; set before finish is closed

	received atomic.Int64           // events received so far
	current  atomic.Pointer[string] // what it is doing, for failure messages

	// Written by run; read once it has returned.
	seqs     []uint64
	data     []string
	times    []time.Time
	last     string
	sessions int // streams opened
	hops     int // moves to another gateway
	err      error
}

// clusterNewSubscriber prepares a subscriber to filters that starts on bases[node],
// resuming after the id from.
func clusterNewSubscriber(bases []string, node int, filters []string, epoch, from string) *clusterSubscriber {
	return &clusterSubscriber{
		bases:   bases,
		node:    node,
		filters: filters,
		epoch:   epoch,
		from:    from,
		http:    &http.Client{Transport: &http.Transport{Proxy: nil}},
	}
}

// run reads until ctx is done, an error, or finish is closed and the subscriber has its
// target.
func (c *clusterSubscriber) run(ctx context.Context, finish <-chan struct{}) {
	defer c.http.CloseIdleConnections()
	pause := time.NewTicker(50 * time.Millisecond)
	defer pause.Stop()
	for ctx.Err() == nil {
		c.session(ctx, finish)
		if c.err != nil || c.caughtUp(finish) {
			return
		}
		c.node = (c.node + 1) % len(c.bases)
		c.hops++
		select {
		case <-pause.C:
		case <-ctx.Done():
		}
	}
}

// session reads one stream until it ends.
func (c *clusterSubscriber) session(ctx context.Context, finish <-chan struct{}) {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(sctx, http.MethodGet,
		c.bases[c.node]+"/events?"+url.Values{"topic": c.filters}.Encode(), nil)
	if err != nil {
		c.err = err
		return
	}
	from := c.last
	if from == "" {
		from = c.from
	}
	if from != "" {
		req.Header.Set("Last-Event-ID", from)
	}
	c.setCurrent("connecting to %s after %q", c.bases[c.node], from)
	resp, err := c.http.Do(req)
	if err != nil {
		c.setCurrent("%s refused: %v", c.bases[c.node], err)
		return // the gateway is down: try the next one
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		c.err = fmt.Errorf("GET /events on %s: %s: %s", c.bases[c.node], resp.Status, b)
		return
	}
	c.sessions++
	c.setCurrent("reading %s from after %q (session %d)", c.bases[c.node], from, c.sessions)
	dec := sseformat.NewDecoder(resp.Body)
	// A subscriber that has its last event waits in Next; the keep-alive wakes it.
	dec.OnComment(func(string) {
		if c.caughtUp(finish) {
			cancel()
		}
	})
	for !c.caughtUp(finish) {
		ev, err := dec.Next()
		if err != nil {
			c.setCurrent("stream from %s ended after %q: %v", c.bases[c.node], c.last, err)
			return
		}
		if ev.Type == "gap" {
			c.err = fmt.Errorf("gap notice from %s after %q: %s", c.bases[c.node], from, ev.Data)
			return
		}
		seq, err := clusterSeqOf(ev.ID, c.epoch)
		if err != nil {
			c.err = fmt.Errorf("from %s: %w", c.bases[c.node], err)
			return
		}
		c.seqs = append(c.seqs, seq)
		c.data = append(c.data, ev.Data)
		c.times = append(c.times, time.Now())
		c.last = ev.ID
		c.received.Add(1)
	}
}

func (c *clusterSubscriber) setCurrent(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	c.current.Store(&s)
}

// doing says what the subscriber is doing.
func (c *clusterSubscriber) doing() string {
	if p := c.current.Load(); p != nil {
		return *p
	}
	return "not started"
}

// caughtUp reports whether finish is closed and the subscriber has its last event.
func (c *clusterSubscriber) caughtUp(finish <-chan struct{}) bool {
	if !isClosed(finish) {
		return false
	}
	return c.target == 0 || (len(c.seqs) > 0 && c.seqs[len(c.seqs)-1] >= c.target)
}

// clusterClients runs subscribers until they have caught up with the stream.
type clusterClients struct {
	subs   []*clusterSubscriber
	cancel context.CancelFunc
	finish chan struct{}
	done   chan struct{}
}

// clusterRunSubscribers starts subs, each on its own goroutine. They are stopped when the
// test ends.
func clusterRunSubscribers(tb testing.TB, subs []*clusterSubscriber) *clusterClients {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cc := &clusterClients{subs: subs, cancel: cancel, finish: make(chan struct{}), done: make(chan struct{})}
	var wg sync.WaitGroup
	for _, s := range subs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.run(ctx, cc.finish)
		}()
	}
	go func() { wg.Wait(); close(cc.done) }()
	tb.Cleanup(func() {
		cancel()
		<-cc.done
	})
	return cc
}

// waitEach waits until every subscriber has received n more events than counted in base.
func (cc *clusterClients) waitEach(tb testing.TB, timeout time.Duration, n int64, base []int64, what string) {
	tb.Helper()
	if behind := cc.tryWaitEach(timeout, n, base); len(behind) > 0 {
		tb.Fatalf("timed out after %s waiting for %s:\n%s", timeout, what, strings.Join(behind, "\n"))
	}
}

// tryWaitEach waits until every subscriber has received n more events than counted in base,
// or timeout; it returns the subscribers still waiting then.
func (cc *clusterClients) tryWaitEach(timeout time.Duration, n int64, base []int64) []string {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		var behind []string
		for i, s := range cc.subs {
			if got := s.received.Load(); got < base[i]+n {
				behind = append(behind, fmt.Sprintf("subscriber %d %v: %d of %d events, %s",
					i, s.filters, got-base[i], n, s.doing()))
			}
		}
		if len(behind) == 0 || time.Now().After(deadline) {
			return behind
		}
		<-tick.C
	}
}

// counts returns how many events each subscriber has received so far.
func (cc *clusterClients) counts() []int64 {
	out := make([]int64, len(cc.subs))
	for i, s := range cc.subs {
		out[i] = s.received.Load()
	}
	return out
}

// finishAndCheck lets every subscriber catch up with the end of stream, then checks that
// each received exactly the stream's events of its topics after its start, in order, each
// once, with the stream's data.
func (cc *clusterClients) finishAndCheck(t *testing.T, stream []storedMsg) {
	t.Helper()
	startSeq := map[string]uint64{}
	for _, s := range cc.subs {
		s.target = lastMatching(stream, s.filters)
		if _, ok := startSeq[s.from]; !ok {
			seq, err := clusterSeqOf(s.from, s.epoch)
			if err != nil {
				t.Fatal(err)
			}
			startSeq[s.from] = seq
		}
	}
	close(cc.finish)
	select {
	case <-cc.done:
	case <-time.After(time.Minute):
		cc.cancel()
		<-cc.done
		for i, s := range cc.subs {
			if !s.caughtUp(cc.finish) {
				var last uint64
				if len(s.seqs) > 0 {
					last = s.seqs[len(s.seqs)-1]
				}
				t.Errorf("subscriber %d %v did not catch up within a minute: at seq %d of %d, on %s",
					i, s.filters, last, s.target, s.bases[s.node])
			}
		}
	}
	bySeq := make(map[uint64]storedMsg, len(stream))
	for _, m := range stream {
		bySeq[m.seq] = m
	}
	for i, s := range cc.subs {
		if s.err != nil {
			t.Errorf("subscriber %d %v: %v", i, s.filters, s.err)
			continue
		}
		want := expectedSeqs(stream, s.filters, startSeq[s.from])
		if !slices.Equal(s.seqs, want) {
			j := firstDifference(s.seqs, want)
			t.Errorf("subscriber %d %v: received %d events, want %d; first difference at %d: got %v, want %v",
				i, s.filters, len(s.seqs), len(want), j, window(s.seqs, j), window(want, j))
			continue
		}
		for j, seq := range s.seqs {
			if bySeq[seq].data != s.data[j] {
				t.Errorf("subscriber %d: event %d has data %q, the stream %q", i, seq, s.data[j], bySeq[seq].data)
				break
			}
		}
	}
}

// clusterCheckStream checks that every acknowledged publish is in the stream, on its topic
// and with its data, and that no publish was stored twice despite its retries.
func clusterCheckStream(t *testing.T, stream []storedMsg, acks []clusterAck) {
	t.Helper()
	bySeq := make(map[uint64]storedMsg, len(stream))
	copies := map[string][]uint64{}
	for _, m := range stream {
		bySeq[m.seq] = m
		copies[m.data] = append(copies[m.data], m.seq)
	}
	missing := 0
	for _, a := range acks {
		if m, ok := bySeq[a.seq]; !ok || m.topic != a.topic || m.data != a.data {
			if missing++; missing <= 5 {
				t.Errorf("acknowledged %s publish %q on %s (seq %d) is not in the stream: found %+v", a.kind, a.data, a.topic, a.seq, m)
			}
		}
	}
	if missing > 5 {
		t.Errorf("... %d acknowledged publishes missing in all", missing)
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

// clusterLongestGap returns the longest interval between consecutive times (in order)
// that overlaps [from, to], and when it began.
func clusterLongestGap(times []time.Time, from, to time.Time) (time.Duration, time.Time) {
	var longest time.Duration
	var began time.Time
	for i := 1; i < len(times); i++ {
		a, b := times[i-1], times[i]
		if b.Before(from) || a.After(to) {
			continue
		}
		if d := b.Sub(a); d > longest {
			longest, began = d, a
		}
	}
	return longest, began
}

// deliveryStall returns the longest interval without an event that any subscriber saw
// overlapping [from, to], the subscriber's index, and when it began.
func (cc *clusterClients) deliveryStall(from, to time.Time) (time.Duration, int, time.Time) {
	var longest time.Duration
	var who int
	var began time.Time
	for i, s := range cc.subs {
		if d, at := clusterLongestGap(s.times, from, to); d > longest {
			longest, who, began = d, i, at
		}
	}
	return longest, who, began
}

// clusterRunNATS runs a NATS server with JetStream in the test process, as an existing
// deployment: with a JetStream domain and a leaf node listener when leafPort is not 0.
func clusterRunNATS(tb testing.TB, domain string, leafPort int) *server.Server {
	tb.Helper()
	opts := &server.Options{
		ServerName:             "deployment",
		Host:                   "127.0.0.1",
		Port:                   -1,
		JetStream:              true,
		JetStreamDomain:        domain,
		StoreDir:               tb.TempDir(),
		NoSigs:                 true,
		DisableJetStreamBanner: true,
	}
	if leafPort != 0 {
		opts.LeafNode = server.LeafNodeOpts{Host: "127.0.0.1", Port: leafPort}
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		tb.Fatalf("nats-server: %v", err)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		tb.Fatal("nats-server not ready")
	}
	tb.Cleanup(func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	return ns
}

// clusterSameEvent reads the next event from every stream and checks that each is the
// same event: the same id (wantID, unless empty) and data.
func clusterSameEvent(tb testing.TB, streams []*sseStream, wantID, wantData string) string {
	tb.Helper()
	id := wantID
	for i, s := range streams {
		ev := s.next(tb)
		if ev.Data != wantData {
			tb.Fatalf("stream %d: event %q with data %q, want data %q", i, ev.ID, ev.Data, wantData)
		}
		if id == "" {
			id = ev.ID
		}
		if ev.ID != id {
			tb.Fatalf("stream %d: event %q has id %q, want %q (as on the other gateways)", i, wantData, ev.ID, id)
		}
	}
	return id
}

// clusterReader is one client reading a filter from gateways with its last id. When a
// gateway ends its stream, it resumes there, as EventSource would.
type clusterReader struct {
	t      *testing.T
	epoch  string
	filter string
	last   string // the id to resume after
	seqs   []uint64
	data   []string
	cuts   int // streams that ended while the client still expected events
}

// lastSeq is the sequence of the last event received, 0 if none.
func (r *clusterReader) lastSeq() uint64 {
	if len(r.seqs) == 0 {
		return 0
	}
	return r.seqs[len(r.seqs)-1]
}

// readFrom reads from g until done reports true.
func (r *clusterReader) readFrom(g *gatewayProc, done func() bool) {
	r.t.Helper()
	s := g.subscribeFrom(r.t, topicQuery(r.filter), r.last)
	defer func() { s.close() }()
	for !done() {
		ev, err := s.recv(eventTimeout)
		if errors.Is(err, errTimeout) {
			r.t.Fatalf("no event within %s after %q from %s", eventTimeout, r.last, g.base)
		}
		if err != nil {
			r.cuts++
			if r.cuts > 50 {
				r.t.Fatalf("%s ended %d streams after %q: %v", g.base, r.cuts, r.last, err)
			}
			s.close()
			<-time.After(100 * time.Millisecond) // the client's reconnection delay
			s = g.subscribeFrom(r.t, topicQuery(r.filter), r.last)
			continue
		}
		if ev.Type == "gap" {
			r.t.Fatalf("gap notice from %s after %q: %s", g.base, r.last, ev.Data)
		}
		seq, err := clusterSeqOf(ev.ID, r.epoch)
		if err != nil {
			r.t.Fatalf("from %s: %v", g.base, err)
		}
		r.seqs, r.data, r.last = append(r.seqs, seq), append(r.data, ev.Data), ev.ID
	}
}

// check compares the events received with the stream's events of the filter after seq
// after, up to the last one received.
func (r *clusterReader) check(stream []storedMsg, after uint64, what string) {
	r.t.Helper()
	want := expectedSeqs(stream, []string{r.filter}, after)
	want = want[:min(len(want), len(r.seqs))]
	if !slices.Equal(r.seqs, want) {
		j := firstDifference(r.seqs, want)
		r.t.Fatalf("%s: received %d events, want %d; first difference at %d: got %v, want %v",
			what, len(r.seqs), len(want), j, window(r.seqs, j), window(want, j))
	}
	for i, seq := range r.seqs {
		if m := clusterStored(stream, seq); m.data != r.data[i] {
			r.t.Fatalf("%s: event %d has data %q, the stream %q", what, seq, r.data[i], m.data)
		}
	}
}

// clusterStored returns the stream's message seq, or a zero storedMsg.
func clusterStored(stream []storedMsg, seq uint64) storedMsg {
	i, ok := slices.BinarySearchFunc(stream, seq, func(m storedMsg, s uint64) int {
		return cmp.Compare(m.seq, s)
	})
	if !ok {
		return storedMsg{}
	}
	return stream[i]
}

// clusterResumeAcross moves one client from gateway to gateway while publishers keep
// publishing through all of them: each time, it leaves, lets events accumulate, and resumes
// on the next gateway with its last id. The events it received must be exactly the
// stream's events of its filter after its first id. It returns that first event and the
// stream.
func clusterResumeAcross(t *testing.T, gws []*gatewayProc, js jetstream.JetStream) (publishResult, []storedMsg) {
	t.Helper()
	const filter = "hop.>"
	first := gws[0].publish(t, "hop.a", "", "start")
	r := &clusterReader{t: t, epoch: epochOf(t, first.ID), filter: filter, last: first.ID}
	bases := make([]string, len(gws))
	for i, g := range gws {
		bases[i] = g.base
	}
	load := clusterStartLoad(t, bases, 2, "", []string{"hop.a", "hop.b", "other.c"}, 5*time.Millisecond)
	hops := 2 * len(gws)
	for hop := range hops {
		n := len(r.seqs)
		r.readFrom(gws[hop%len(gws)], func() bool { return len(r.seqs) >= n+30 })
		// Leave a backlog for the next gateway to catch up from.
		load.waitAcks(t, 30*time.Second, 40, time.Now(), "while the client is away")
	}
	load.halt()
	stream := clusterReadStream(t, js)
	clusterCheckStream(t, stream, load.acks.all())
	target := lastMatching(stream, []string{filter})
	r.readFrom(gws[hops%len(gws)], func() bool { return r.lastSeq() >= target })
	r.check(stream, first.Seq, fmt.Sprintf("one client resuming across %d gateways", len(gws)))
	t.Logf("one client resumed %d times across %d gateways while %d events were published: received %d, in order, none missing or repeated; %d streams ended early and were resumed on the same gateway",
		hops, len(gws), load.acks.count(), len(r.seqs), r.cuts)
	return first, stream
}

// clusterResumeBurst resumes n times from the id of the stored event after, on each of
// gws in turn, and checks that every stream delivers the next (up to) 50 events of filter
// without ending first. Gateways that keep few recent events serve these resumes from the
// stream.
func clusterResumeBurst(t *testing.T, gws []*gatewayProc, stream []storedMsg, filter, epoch string, after uint64, n int) {
	t.Helper()
	want := expectedSeqs(stream, []string{filter}, after)
	want = want[:min(len(want), 50)]
	from := eventID(epoch, after)
	cut := 0
	for i := range n {
		s := gws[i%len(gws)].subscribeFrom(t, topicQuery(filter), from)
		for j, seq := range want {
			ev, err := s.recv(eventTimeout)
			if errors.Is(err, errTimeout) {
				t.Fatalf("resume %d from %s on %s: no event within %s after %d of %d events",
					i, from, gws[i%len(gws)].base, eventTimeout, j, len(want))
			}
			if err != nil {
				if cut++; cut <= 3 {
					t.Errorf("resume %d from %s on %s: the stream ended after %d of %d events: %v",
						i, from, gws[i%len(gws)].base, j, len(want), err)
				}
				break
			}
			if ev.ID != eventID(epoch, seq) {
				t.Fatalf("resume %d from %s on %s: event %d is %s, want %s", i, from, gws[i%len(gws)].base, j, ev.ID, eventID(epoch, seq))
			}
		}
		s.close()
	}
	if cut > 0 {
		t.Errorf("%d of %d resumes from %s ended before delivering the %d events after it", cut, n, from, len(want))
	} else {
		t.Logf("%d resumes from %s across %d gateways each delivered the %d events after it", n, from, len(gws), len(want))
	}
}
