package e2e

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// This file holds the nodes of the tests of clustered deployments: gateways forming an
// embedded NATS cluster, each a process on fixed ports that the tests stop and start again.
// The tests themselves are in cluster_embedded_test.go and cluster_failover_test.go; the
// stream's side is in cluster_stream_test.go, and the checks shared with gateways on an
// existing deployment (cluster_external_test.go, natsserver_test.go) in sharedstream_test.go.

// clusterStartTimeout bounds a cluster node's start: the nodes wait for each other, and
// the machine may be busy.
const clusterStartTimeout = 90 * time.Second

// clusterSettings are the settings of every gateway in these tests: clients are told to
// reconnect quickly, and idle streams carry a keep-alive every second.
var clusterSettings = []string{"GATEWAY_RETRY=100ms", "GATEWAY_KEEPALIVE=1s"}

// clusterRecoveryTimeout bounds the wait for every client to receive events again after a
// node went down: far more than the few seconds a failover takes.
const clusterRecoveryTimeout = 30 * time.Second

// freePorts returns n distinct ports on 127.0.0.1 that were free a moment ago. They
// are chosen below the kernel's ephemeral range, so that neither an outgoing connection nor
// a listener on port 0 takes one while the node it belongs to is down for a restart.
func freePorts(tb testing.TB, n int) []int {
	tb.Helper()
	low, high := 10000, ephemeralLow()
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

// ephemeralLow is the first port of the kernel's ephemeral range.
func ephemeralLow() int {
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
	prefix   []string // the command its process is launched through, if any (clusterHost)
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

// clusterHost is where a cluster node runs: the address its listeners bind to, and the
// command its process is launched through (none: the gateway binary itself).
type clusterHost struct {
	addr   string
	prefix []string
}

// clusterNewNodes prepares n cluster nodes on 127.0.0.1 with the same routes, each with
// its own data dir and ports, and a stream with n replicas. Their processes are not
// started: set extra settings in env first if needed, then launch them. Failed starts are
// added to starts.
func clusterNewNodes(tb testing.TB, n int, starts *clusterStarts) []*clusterNode {
	tb.Helper()
	hosts := make([]clusterHost, n)
	for i := range hosts {
		hosts[i].addr = "127.0.0.1"
	}
	return clusterNewNodesOn(tb, hosts, starts)
}

// clusterNewNodesOn is clusterNewNodes with a node on each of hosts.
func clusterNewNodesOn(tb testing.TB, hosts []clusterHost, starts *clusterStarts) []*clusterNode {
	tb.Helper()
	n := len(hosts)
	ports := freePorts(tb, 3*n)
	routes := make([]string, n)
	for i, h := range hosts {
		routes[i] = fmt.Sprintf("nats://%s:%d", h.addr, ports[3*i])
	}
	nodes := make([]*clusterNode, n)
	for i, h := range hosts {
		nd := &clusterNode{
			name:     fmt.Sprintf("n%d", i+1),
			dir:      tb.TempDir(),
			prefix:   h.prefix,
			httpAddr: fmt.Sprintf("%s:%d", h.addr, ports[3*i+1]),
			natsURL:  fmt.Sprintf("nats://%s:%d", h.addr, ports[3*i+2]),
			http:     &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 8}, Timeout: 30 * time.Second},
		}
		nd.base = "http://" + nd.httpAddr
		nd.env = append(slices.Clone(clusterSettings),
			"GATEWAY_SERVER_NAME="+nd.name,
			"GATEWAY_CLUSTER_NAME=natsse-e2e",
			fmt.Sprintf("GATEWAY_CLUSTER_ADDR=%s:%d", h.addr, ports[3*i]),
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
	n.proc = launchGatewayVia(tb, n.prefix, n.dir, n.env...)
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

// clusterBases returns the nodes' base URLs.
func clusterBases(nodes []*clusterNode) []string {
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = n.base
	}
	return out
}
