package gateway

import (
	"fmt"
	"net"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/natsse/natsse/natsbus"
)

// newClusterEnvs starts three gateways, each on a node of an embedded NATS cluster with a
// stream of three replicas, and stops them at the end of the test.
func newClusterEnvs(t *testing.T) []*testEnv {
	t.Helper()
	var routes, addrs []string
	for _, a := range freeAddrs(t, 3) {
		addrs, routes = append(addrs, a), append(routes, "nats://"+a)
	}
	buses := make([]*natsbus.Bus, 3)
	errs := make([]error, 3)
	var wg sync.WaitGroup
	for i := range buses {
		o := natsbus.DefaultOptions()
		o.StoreDir = t.TempDir()
		o.ServerName = fmt.Sprintf("n%d", i)
		o.Cluster = natsbus.ClusterOptions{Name: "presence", Addr: addrs[i], Routes: routes}
		o.Replicas = 3
		o.StartTimeout = time.Minute
		wg.Add(1)
		go func() { // the nodes wait for each other: start them together
			defer wg.Done()
			buses[i], errs[i] = natsbus.New(o)
		}()
	}
	wg.Wait()
	var envs []*testEnv
	for i, b := range buses {
		if b == nil {
			continue
		}
		t.Cleanup(func() { b.Close() })
		if errs[i] != nil {
			continue
		}
		opts := DefaultOptions()
		opts.Bus = b
		gw, err := New(opts)
		if err != nil {
			t.Fatalf("node %d: gateway.New: %v", i, err)
		}
		e := &testEnv{bus: b, gw: gw, srv: httptest.NewServer(gw.Handler())}
		t.Cleanup(e.close)
		envs = append(envs, e)
	}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
	}
	return envs
}

// freeAddrs returns n addresses on 127.0.0.1 whose ports were free a moment ago.
func freeAddrs(t *testing.T, n int) []string {
	t.Helper()
	var addrs []string
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close() // not before all n are taken: the ports differ
		addrs = append(addrs, ln.Addr().String())
	}
	return addrs
}

// TestPresenceCluster spreads streams over three gateways of an embedded cluster: each
// answers the same cluster-wide counts, from three gateways, as streams come and go; a
// stopped gateway is no longer counted, and the others answer without waiting for it.
func TestPresenceCluster(t *testing.T) {
	t.Parallel()
	envs := newClusterEnvs(t)
	const query = "topic=room.1&topic=room.2&topic=lobby"
	for _, e := range envs {
		e.waitPresence(t, query, map[string]uint64{"room.1": 0, "room.2": 0, "lobby": 0}, 3)
	}
	closeOnNode0 := envs[0].subscribe(t, "topic=room.1", "")
	envs[0].subscribe(t, "topic=room.1", "")
	envs[0].subscribe(t, "topic=room.*", "")
	envs[1].subscribe(t, "topic=room.1", "")
	envs[1].subscribe(t, "topic=room.>&topic=*.1", "") // both match room.1: once
	closeOnNode2 := envs[2].subscribe(t, "topic=room.1", "")
	envs[2].subscribe(t, "topic=room.2", "")
	for _, e := range envs {
		e.waitPresence(t, query, map[string]uint64{"room.1": 6, "room.2": 3, "lobby": 0}, 3)
	}
	closeOnNode0.close()
	closeOnNode2.close()
	for _, e := range envs {
		e.waitPresence(t, query, map[string]uint64{"room.1": 4, "room.2": 3, "lobby": 0}, 3)
	}

	// Node 2 stops: its streams end, and the others count without it, at once.
	envs[2].close()
	for _, e := range envs[:2] {
		e.waitPresence(t, query, map[string]uint64{"room.1": 4, "room.2": 2, "lobby": 0}, 2)
		res, err := e.gw.presence.Survey(t.Context(), []string{"room.1"}, time.Minute)
		if err != nil || res.Gateways != 2 || !res.AllAnswered {
			t.Fatalf("survey without node 2: %+v, %v; want 2 gateways, all answered", res, err)
		}
	}
}
