package natsbus

import (
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// freePorts returns n ports that were free a moment ago.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var ports []int
	for i := 0; i < n; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

func TestClusterOfThree(t *testing.T) {
	t.Parallel()
	ports := freePorts(t, 3)
	var routes []string
	for _, p := range ports {
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", p))
	}
	buses := make([]*Bus, 3)
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range buses {
		wg.Add(1)
		go func() { // the nodes wait for each other: start them together
			defer wg.Done()
			buses[i], errs[i] = New(testOptions(t, func(o *Options) {
				o.ServerName = fmt.Sprintf("n%d", i)
				o.ClientAddr = "127.0.0.1:0"
				o.Cluster = ClusterOptions{Name: "test", Addr: fmt.Sprintf("127.0.0.1:%d", ports[i]), Routes: routes}
				o.Replicas = 3
				o.StartTimeout = time.Minute
			}))
		}()
	}
	wg.Wait()
	for i, b := range buses {
		if errs[i] != nil {
			t.Fatalf("node %d: %v", i, errs[i])
		}
		t.Cleanup(func() { b.Close() })
	}
	if buses[0].Epoch() != buses[1].Epoch() || buses[1].Epoch() != buses[2].Epoch() {
		t.Fatalf("epochs differ: %d %d %d", buses[0].Epoch(), buses[1].Epoch(), buses[2].Epoch())
	}
	_, got := follow(t, buses[2], 0)
	seq := publish(t, buses[0], "x", "", "from node 0")
	select {
	case m := <-got:
		if m.Seq != seq || string(m.Data) != "from node 0" {
			t.Fatalf("node 2 followed %+v, want seq %d", m, seq)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("node 2 did not see node 0's publish")
	}
}

// runNATS starts a plain NATS server with JetStream and a leaf node listener, as an
// existing deployment would be.
func runNATS(t testing.TB, leafPort int) *server.Server {
	t.Helper()
	ns, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, JetStreamDomain: "hub", StoreDir: t.TempDir(), NoSigs: true,
		LeafNode: server.LeafNodeOpts{Host: "127.0.0.1", Port: leafPort},
	})
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	return ns
}

// TestExternalAndLeaf runs one bus on an existing deployment and one as a leaf node of it:
// both see the same stream, and the leaf's local NATS clients reach it too.
func TestExternalAndLeaf(t *testing.T) {
	t.Parallel()
	leafPort := freePorts(t, 1)[0]
	ns := runNATS(t, leafPort)
	external := newTestBus(t, func(o *Options) { o.URLs = []string{ns.ClientURL()}; o.ClientAddr = "127.0.0.1:0" })
	if external.ClientURL() != "" {
		t.Fatalf("external mode has a client URL: %s", external.ClientURL())
	}
	leafURL := fmt.Sprintf("nats://127.0.0.1:%d", leafPort)
	leaf := newTestBus(t, func(o *Options) {
		o.LeafRemotes = []string{leafURL}
		o.JetStreamDomain = "hub"
		o.ClientAddr = "127.0.0.1:0"
		o.StartTimeout = time.Minute
	})
	if external.Epoch() != leaf.Epoch() {
		t.Fatalf("epochs differ: %d and %d", external.Epoch(), leaf.Epoch())
	}
	_, got := follow(t, external, 0)
	seq1 := publish(t, leaf, "shared", "", "through the leaf")
	nc, err := nats.Connect(leaf.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.NewWithDomain(nc, "hub")
	if err != nil {
		t.Fatal(err)
	}
	ack, err := js.Publish(t.Context(), "sse.shared", []byte("a local client of the leaf"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []uint64{seq1, ack.Sequence} {
		select {
		case m := <-got:
			if m.Seq != want {
				t.Fatalf("followed seq %d, want %d", m.Seq, want)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("seq %d did not reach the external bus", want)
		}
	}
}
