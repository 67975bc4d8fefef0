package e2e

import (
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// runNATS runs a NATS server with JetStream in the test process, as an existing
// deployment: with a JetStream domain and a leaf node listener when leafPort is not 0.
func runNATS(tb testing.TB, domain string, leafPort int) *server.Server {
	tb.Helper()
	return runNATSWith(tb, func(opts *server.Options) {
		opts.JetStreamDomain = domain
		if leafPort != 0 {
			opts.LeafNode = server.LeafNodeOpts{Host: "127.0.0.1", Port: leafPort}
		}
	})
}

// runNATSWith runs a NATS server with JetStream in the test process, as an existing
// deployment, with the options change sets.
func runNATSWith(tb testing.TB, change func(*server.Options)) *server.Server {
	tb.Helper()
	opts := &server.Options{
		ServerName:             "deployment",
		Host:                   "127.0.0.1",
		Port:                   -1,
		JetStream:              true,
		StoreDir:               tb.TempDir(),
		NoSigs:                 true,
		DisableJetStreamBanner: true,
	}
	change(opts)
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

// connectJS connects to a NATS deployment (any of the comma-separated urls, reconnecting to
// the others) for the test's own JetStream requests. The connection is closed when the
// test ends.
func connectJS(tb testing.TB, urls string) jetstream.JetStream {
	tb.Helper()
	nc, err := nats.Connect(urls, nats.Name("e2e-check"), nats.MaxReconnects(-1),
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
