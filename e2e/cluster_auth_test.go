package e2e

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestClusterAuth runs three embedded nodes with auth on and route credentials: tokens
// work on every node, over HTTP and NATS, and a server without the credentials cannot join.
func TestClusterAuth(t *testing.T) {
	var starts clusterStarts
	nodes := clusterNewNodes(t, 3, &starts)
	for _, n := range nodes {
		n.env = append(n.env, "GATEWAY_AUTH_SECRET="+authSecret,
			"GATEWAY_CLUSTER_USER=route", "GATEWAY_CLUSTER_PASSWORD=route-password-e2e")
	}
	clusterStart(t, nodes)
	hour := time.Now().Add(time.Hour)

	// An HTTP publish through n1 reaches a stream on n3; a JetStream publish through n2's
	// NATS port too.
	reader := bearer(mint(t, "r", hour, []string{"orders.>"}, nil))
	resp, body, err := nodes[2].request(t.Context(), http.MethodGet, "/events?topic=orders.x", nil, nil)
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a stream without a token on n3: %v %v %s", resp, err, body)
	}
	g3 := &gatewayProc{base: nodes[2].base, client: nodes[2].http}
	s := g3.subscribeWith(t, "topic=orders.x", streamOpts{header: reader}) // orders.x only: not the warm-up
	// A NATS client of n3 subscribed inside its grant gets each event (a token client's core
	// publish through another node may come twice: see README, Known limits).
	sub, err := nats.Connect(nodes[2].natsURL, nats.MaxReconnects(0), nats.Token(mint(t, "sub", hour, []string{"orders.>"}, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	natsGot, err := sub.SubscribeSync("sse.orders.>")
	if err != nil {
		t.Fatal(err)
	}
	// Core NATS delivers to the interest a node knows of: wait until n1 knows of n3's.
	warm := bearer(mint(t, "w", hour, nil, []string{"orders.>"}))
	pollUntil(t, 10*time.Second, "n1's publishes reaching a NATS client of n3", func() bool {
		nodes[0].request(t.Context(), http.MethodPost, "/publish/orders.warm", strings.NewReader("warm"), warm)
		_, err := natsGot.NextMsg(100 * time.Millisecond)
		return err == nil
	})
	for _, err := natsGot.NextMsg(200 * time.Millisecond); err == nil; _, err = natsGot.NextMsg(200 * time.Millisecond) {
	}
	resp, body, err = nodes[0].request(t.Context(), http.MethodPost, "/publish/orders.x", strings.NewReader("over http"),
		bearer(mint(t, "w", hour, nil, []string{"orders.>"})))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("publish through n1: %v %v %s", resp, err, body)
	}
	if ev := s.next(t); ev.Data != "over http" {
		t.Fatalf("n3 got %+v", ev)
	}
	nc, err := nats.Connect(nodes[1].natsURL, nats.MaxReconnects(0), nats.Token(mint(t, "svc", hour, nil, []string{"orders.>"})))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	if _, err := js.Publish(t.Context(), "sse.orders.x", []byte("over nats")); err != nil {
		t.Fatalf("JetStream publish through n2: %v", err)
	}
	if ev := s.next(t); ev.Data != "over nats" {
		t.Fatalf("n3 got %+v", ev)
	}
	for _, want := range []string{"over http", "over nats"} {
		m, err := natsGot.NextMsg(eventTimeout)
		if err != nil || string(m.Data) != want {
			t.Fatalf("the NATS subscriber on n3: %v %v, want %q", m, err, want)
		}
	}

	// A server that routes to n1 without the credentials is refused; with them it joins.
	n1Route := routeOf(t, nodes[0])
	peer := func(name, userinfo string) *server.Server {
		u, _ := url.Parse(fmt.Sprintf("nats://%s%s", userinfo, n1Route))
		// Its own route listener takes credentials of its own: the peers cannot join each
		// other once one of them has learnt of the others from the cluster.
		ns, err := server.NewServer(&server.Options{ServerName: name, Host: "127.0.0.1", Port: -1, NoSigs: true,
			Cluster: server.ClusterOpts{Name: "natsse-e2e", Host: "127.0.0.1", Port: -1, Username: name, Password: name + "-only"},
			Routes:  []*url.URL{u}})
		if err != nil {
			t.Fatal(err)
		}
		ns.Start()
		t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
		return ns
	}
	// Whether a server joined shows in what its own clients receive. (A refused server
	// counts a route for a moment of each attempt: its route count proves nothing.)
	listen := func(ns *server.Server) *nats.Subscription {
		nc, err := nats.Connect(ns.ClientURL())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		s, err := nc.SubscribeSync("sse.orders.>")
		if err != nil {
			t.Fatal(err)
		}
		nc.Flush()
		return s
	}
	intruder := listen(peer("intruder", ""))
	guess := listen(peer("guess", "route:guess@"))
	friend := listen(peer("friend", "route:route-password-e2e@"))
	w := bearer(mint(t, "w", hour, nil, []string{"orders.>"}))
	pollUntil(t, 30*time.Second, "a server with the route credentials receiving the cluster's messages", func() bool {
		nodes[0].request(t.Context(), http.MethodPost, "/publish/orders.join", strings.NewReader("join"), w)
		_, err := friend.NextMsg(100 * time.Millisecond)
		return err == nil
	})
	for who, s := range map[string]*nats.Subscription{"intruder": intruder, "guess": guess} {
		if m, err := s.NextMsg(500 * time.Millisecond); err == nil {
			t.Fatalf("%s, without the route credentials, received %q", who, m.Data)
		}
	}
}

// routeOf is the host:port of a cluster node's route listener.
func routeOf(tb testing.TB, n *clusterNode) string {
	tb.Helper()
	for _, kv := range n.env {
		if addr, ok := strings.CutPrefix(kv, "GATEWAY_CLUSTER_ADDR="); ok {
			return addr
		}
	}
	tb.Fatalf("node %s has no route address", n.name)
	return ""
}
