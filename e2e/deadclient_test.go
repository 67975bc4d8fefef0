package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// netnsHost is a test host in a network namespace of its own, joined to this one by a veth
// pair: hostAddr here, peerAddr there.
type netnsHost struct {
	name               string
	link               string // our end of the veth pair
	hostAddr, peerAddr string
}

// newNetnsHost makes the namespace and its link, and removes them when the test ends. It
// needs root and iproute2: without them it skips, except under CI=true, where it fails.
func newNetnsHost(tb testing.TB) *netnsHost {
	tb.Helper()
	requireNetns(tb)
	id := os.Getpid() % 200
	h := &netnsHost{
		name:     fmt.Sprintf("natsse-e2e-%d", os.Getpid()),
		link:     fmt.Sprintf("nse%d", os.Getpid()%100000),
		hostAddr: fmt.Sprintf("10.231.%d.1", id),
		peerAddr: fmt.Sprintf("10.231.%d.2", id),
	}
	peer := h.link + "p"
	run := func(args ...string) {
		tb.Helper()
		runIP(tb, args...)
	}
	run("netns", "add", h.name)
	tb.Cleanup(func() {
		exec.Command("ip", "link", "del", h.link).Run()
		exec.Command("ip", "netns", "del", h.name).Run()
	})
	run("link", "add", h.link, "type", "veth", "peer", "name", peer)
	run("link", "set", peer, "netns", h.name)
	run("addr", "add", h.hostAddr+"/24", "dev", h.link)
	run("link", "set", h.link, "up")
	run("netns", "exec", h.name, "ip", "addr", "add", h.peerAddr+"/24", "dev", peer)
	run("netns", "exec", h.name, "ip", "link", "set", peer, "up")
	run("netns", "exec", h.name, "ip", "link", "set", "lo", "up")
	return h
}

// cut takes our end of the link down: the peer can no longer send anything, not even a
// FIN or a reset, and nothing reaches it.
func (h *netnsHost) cut(tb testing.TB) {
	tb.Helper()
	runIP(tb, "link", "set", h.link, "down")
}

// TestVanishedClient subscribes from another host, then makes that host vanish without a
// FIN. The gateway must notice with its next keep-alive writes (the connection's
// unacknowledged data times out) and drop the stream within three times README's "about
// GATEWAY_KEEPALIVE + GATEWAY_WRITE_TIMEOUT", instead of holding it for the kernel's
// retransmission timeout (about 15 minutes).
func TestVanishedClient(t *testing.T) {
	h := newNetnsHost(t)
	curl, err := exec.LookPath("curl")
	if err != nil {
		skipOrFail(t, "needs curl as the client on the test host")
	}
	const keepAlive, writeTimeout = time.Second, 2 * time.Second
	g := startGateway(t, "GATEWAY_HTTP_ADDR="+h.hostAddr+":0",
		"GATEWAY_KEEPALIVE="+keepAlive.String(), "GATEWAY_WRITE_TIMEOUT="+writeTimeout.String())
	client := exec.Command("ip", "netns", "exec", h.name, curl, "-sN", g.url("/events?topic=vanish"))
	out := newLogLines()
	client.Stdout = out
	if err := client.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Process.Kill(); client.Wait() })
	pollUntil(t, 30*time.Second, "the remote client's stream joined", func() bool { return g.stats(t).Connections == 1 })
	g.publish(t, "vanish", "", "before")
	pollUntil(t, 30*time.Second, "the remote client received an event", func() bool {
		return strings.Contains(out.text(), "data: before")
	})

	h.cut(t)
	began := time.Now()
	// Timers, not CPU, decide when: no allowance for a slow build.
	limit := 3 * (keepAlive + writeTimeout)
	pollUntil(t, limit, "the gateway dropped the vanished client", func() bool { return g.stats(t).Connections == 0 })
	t.Logf("vanished client dropped %s after its host went away", time.Since(began).Round(100*time.Millisecond))
	// The gateway still serves others.
	s := g.subscribe(t, "topic=vanish")
	id := g.publish(t, "vanish", "", "after").ID
	if ev := s.next(t); ev.ID != id {
		t.Fatalf("got %s, want %s", ev.ID, id)
	}
}
