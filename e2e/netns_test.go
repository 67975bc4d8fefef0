package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// This file holds the network namespaces of the tests that need hosts of their own: to
// make a host vanish (deadclient_test.go) or to partition a cluster (partition_test.go).

// requireNetns skips the test without root and iproute2's ip command, except under
// CI=true, where it fails it.
func requireNetns(tb testing.TB) {
	tb.Helper()
	if _, err := exec.LookPath("ip"); err != nil || os.Geteuid() != 0 {
		skipOrFail(tb, "needs root and iproute2's ip command (network namespaces)")
	}
}

// runIP runs iproute2's ip with args, failing the test if it fails.
func runIP(tb testing.TB, args ...string) {
	tb.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		tb.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// netnsLAN is a network of test hosts, each in a network namespace of its own and joined
// by a veth pair to a bridge of this namespace. The bridge has an address too: this
// process reaches every host through it, as the hosts reach each other.
type netnsLAN struct {
	bridge string
	addr   string // this namespace's address on the bridge
	hosts  []*lanHost
	routes []blackhole // added by cutOff, removed by heal
}

// lanHost is one host of a netnsLAN.
type lanHost struct {
	ns   string // the network namespace
	link string // its veth pair's end on the bridge
	addr string
}

// blackhole is a route that silently drops what a namespace sends to dst.
type blackhole struct{ ns, dst string }

// newNetnsLAN makes a LAN of n hosts on a private /24 derived from the pid, and removes it
// all when the test ends. Without root and iproute2 it skips (fails under CI=true).
func newNetnsLAN(tb testing.TB, n int) *netnsLAN {
	tb.Helper()
	requireNetns(tb)
	pid := os.Getpid()
	subnet := freeSubnet(tb, pid)
	tag := fmt.Sprintf("nsl%d", pid%100000) // interface names stay under 15 characters
	lan := &netnsLAN{bridge: tag + "br", addr: subnet + ".1"}
	runIP(tb, "link", "add", lan.bridge, "type", "bridge")
	tb.Cleanup(func() { exec.Command("ip", "link", "del", lan.bridge).Run() })
	runIP(tb, "addr", "add", lan.addr+"/24", "dev", lan.bridge)
	runIP(tb, "link", "set", lan.bridge, "up")
	for i := range n {
		h := &lanHost{
			ns:   fmt.Sprintf("natsse-e2e-%d-%d", pid, i+1),
			link: fmt.Sprintf("%sh%d", tag, i+1),
			addr: fmt.Sprintf("%s.%d", subnet, 11+i),
		}
		peer := fmt.Sprintf("%sn%d", tag, i+1)
		runIP(tb, "netns", "add", h.ns)
		tb.Cleanup(func() { exec.Command("ip", "netns", "del", h.ns).Run() })
		runIP(tb, "link", "add", h.link, "type", "veth", "peer", "name", peer, "netns", h.ns)
		tb.Cleanup(func() { exec.Command("ip", "link", "del", h.link).Run() })
		runIP(tb, "link", "set", h.link, "master", lan.bridge)
		runIP(tb, "link", "set", h.link, "up")
		runIP(tb, "-n", h.ns, "addr", "add", h.addr+"/24", "dev", peer)
		runIP(tb, "-n", h.ns, "link", "set", peer, "up")
		runIP(tb, "-n", h.ns, "link", "set", "lo", "up")
		lan.hosts = append(lan.hosts, h)
	}
	return lan
}

// freeSubnet returns the first three bytes of a 10.232.x.0/24 that no address of this
// namespace is on, starting from one derived from pid.
func freeSubnet(tb testing.TB, pid int) string {
	tb.Helper()
	for i := range 250 {
		net := fmt.Sprintf("10.232.%d", (pid+i)%250)
		out, err := exec.Command("ip", "-4", "-o", "addr", "show", "to", net+".0/24").Output()
		if err != nil {
			tb.Fatalf("ip addr show: %v", err)
		}
		if len(strings.TrimSpace(string(out))) == 0 {
			return net
		}
	}
	tb.Fatal("no free 10.232.x.0/24 subnet")
	return ""
}

// clusterHosts returns the hosts as cluster hosts: each node binds to its host's address,
// and its process runs in its host's namespace.
func (lan *netnsLAN) clusterHosts() []clusterHost {
	out := make([]clusterHost, len(lan.hosts))
	for i, h := range lan.hosts {
		out[i] = clusterHost{addr: h.addr, prefix: []string{"ip", "netns", "exec", h.ns}}
	}
	return out
}

// cutOff partitions the LAN: host i and the others no longer reach each other, while this
// namespace still reaches them all. What they send each other is dropped without a trace
// (no reset, no ICMP error), as in a real partition: blackhole routes in each namespace.
// The partition ends with heal, or when the test ends.
func (lan *netnsLAN) cutOff(tb testing.TB, i int) {
	tb.Helper()
	cut := lan.hosts[i]
	for j, peer := range lan.hosts {
		if j == i {
			continue
		}
		for _, r := range []blackhole{{cut.ns, peer.addr}, {peer.ns, cut.addr}} {
			runIP(tb, "-n", r.ns, "route", "add", "blackhole", r.dst+"/32")
			lan.routes = append(lan.routes, r)
		}
	}
	tb.Cleanup(func() { lan.heal(tb) })
}

// heal removes the partition's routes. It does nothing when there is no partition.
func (lan *netnsLAN) heal(tb testing.TB) {
	tb.Helper()
	for _, r := range lan.routes {
		runIP(tb, "-n", r.ns, "route", "del", "blackhole", r.dst+"/32")
	}
	lan.routes = nil
}
