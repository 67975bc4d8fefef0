package natsbus

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
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

// TestClusterOfThree runs three nodes whose NATS clients need tokens, as with auth on: the
// replicated stream lives in the gateway's account, and every node follows it.
func TestClusterOfThree(t *testing.T) {
	t.Parallel()
	buses := newTestCluster(t)
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

// newTestCluster starts three nodes whose NATS clients need tokens (none is accepted), with
// a stream of three replicas, and closes them at the end of the test.
func newTestCluster(t *testing.T) []*Bus {
	t.Helper()
	ports := freePorts(t, 3)
	buses := make([]*Bus, 3)
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range buses {
		wg.Add(1)
		go func() { // the nodes wait for each other: start them together
			defer wg.Done()
			buses[i], errs[i] = New(testOptions(t, clusterNode(i, ports)))
		}()
	}
	wg.Wait()
	for _, b := range buses {
		if b != nil {
			t.Cleanup(func() { b.Close() })
		}
	}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
	}
	return buses
}

// clusterNode sets the options of node i of the three-node cluster whose route ports are
// ports: named n<i>, its NATS clients need tokens (none is accepted), and the stream has
// three replicas.
func clusterNode(i int, ports []int) func(*Options) {
	var routes []string
	for _, p := range ports {
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", p))
	}
	return func(o *Options) {
		o.ServerName = fmt.Sprintf("n%d", i)
		o.ClientAddr = "127.0.0.1:0"
		o.Cluster = ClusterOptions{Name: "test", Addr: fmt.Sprintf("127.0.0.1:%d", ports[i]), Routes: routes,
			User: "route", Password: "route-password"}
		o.ClientAuth = func(string) (ClientGrants, error) { return ClientGrants{}, errors.New("no client here") }
		o.Replicas = 3
		o.StartTimeout = time.Minute
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
	// A leaf whose clients need tokens: a token client publishes through it, with the
	// stream's acknowledgement, and the gateway side is unaffected.
	guarded := newTestBus(t, func(o *Options) {
		o.LeafRemotes = []string{leafURL}
		o.JetStreamDomain = "hub"
		o.ClientAddr = "127.0.0.1:0"
		o.StartTimeout = time.Minute
		o.ClientAuth = func(token string) (ClientGrants, error) {
			if token != "t" {
				return ClientGrants{}, errors.New("unknown token")
			}
			return ClientGrants{Name: "svc", Publish: []string{"shared"}}, nil
		}
	})
	tc, err := nats.Connect(guarded.ClientURL(), nats.Token("t"))
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	tjs, _ := jetstream.New(tc)
	tack, err := tjs.Publish(t.Context(), "sse.shared", []byte("a token client of a leaf"))
	if err != nil {
		t.Fatalf("JetStream publish through a guarded leaf: %v", err)
	}
	seq3 := publish(t, guarded, "shared", "", "the guarded leaf itself")
	for _, want := range []uint64{seq1, ack.Sequence, tack.Sequence, seq3} {
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

// startRouteNode starts the embedded server of a cluster node with cluster, alone, so
// that other servers try to join it.
func startRouteNode(t *testing.T, cluster ClusterOptions) *server.Server {
	t.Helper()
	o := testOptions(t, func(o *Options) {
		o.ServerName = "n0"
		o.Cluster = cluster
		o.ClientAuth = func(string) (ClientGrants, error) { return ClientGrants{}, errors.New("no client here") }
	})
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	o.derive()
	node := &Bus{opts: o, log: o.Logger}
	if err := node.startServer(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { node.ns.Shutdown(); node.ns.WaitForShutdown() })
	return node.ns
}

// routePeer starts a plain server that tries to join the cluster at route. Its own route
// listener takes credentials of its own, so that the peers cannot join each other once
// one of them has learnt of the others from the node.
func routePeer(t *testing.T, name, route string, tc *tls.Config) *server.Server {
	t.Helper()
	u, _ := url.Parse(route)
	ns, err := server.NewServer(&server.Options{ServerName: name, Host: "127.0.0.1", Port: -1, NoSigs: true,
		Cluster: server.ClusterOpts{Name: "test", Host: "127.0.0.1", Port: -1, TLSConfig: tc, TLSTimeout: 5,
			Username: name, Password: name + "-only"}, Routes: []*url.URL{u}})
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	return ns
}

// onlyFriendJoins waits until node has a route to friend, then checks that it has none to
// anyone else. (A refused server counts a route for a moment of each attempt: its own
// count proves nothing.)
func onlyFriendJoins(t *testing.T, node *server.Server, friend string) {
	t.Helper()
	routed := func() map[string]bool {
		rz, err := node.Routez(nil)
		if err != nil {
			t.Fatal(err)
		}
		names := make(map[string]bool)
		for _, r := range rz.Routes {
			names[r.RemoteName] = true
		}
		return names
	}
	deadline := time.Now().Add(20 * time.Second)
	for !routed()[friend] {
		if time.Now().After(deadline) {
			t.Fatalf("%s, with the right credentials, did not join", friend)
		}
		<-time.After(20 * time.Millisecond) // polling interval
	}
	for name := range routed() {
		if name != friend {
			t.Fatalf("%s joined without the right credentials", name)
		}
	}
}

// TestClusterRouteCredentials starts a cluster node whose routes need credentials: a server
// that presents them joins, one that does not is refused.
func TestClusterRouteCredentials(t *testing.T) {
	t.Parallel()
	port := freePorts(t, 1)[0]
	route := func(userinfo string) string { return fmt.Sprintf("nats://%s127.0.0.1:%d", userinfo, port) }
	cluster := ClusterOptions{Name: "test", Addr: fmt.Sprintf("127.0.0.1:%d", port), Routes: []string{route("")},
		User: "route", Password: "s3cret-route-password"}
	node := startRouteNode(t, cluster)
	routePeer(t, "intruder", route(""), nil)
	routePeer(t, "wrong", route("route:guess@"), nil)
	routePeer(t, "friend", route("route:s3cret-route-password@"), nil)
	onlyFriendJoins(t, node, "friend")

	cluster.User, cluster.Password = "", ""
	err := Options{StoreDir: "x", SubjectPrefix: "sse", Stream: "S", DuplicateWindow: time.Minute, SyncInterval: time.Minute,
		MaxReplays: 1, Replicas: 1, ServerName: "n", Cluster: cluster,
		ClientAuth: func(string) (ClientGrants, error) { return ClientGrants{}, nil }}.Validate()
	if err == nil || !strings.Contains(err.Error(), "Cluster.User") {
		t.Fatalf("client auth with an open route port: %v, want refused", err)
	}
}

// TestClusterRouteTLS starts a cluster node whose routes use TLS both ways: a server with a
// certificate of the cluster's CA joins; one without TLS, or with another CA's, does not.
func TestClusterRouteTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	files := writeRouteCerts(t, dir, "ca")
	other := writeRouteCerts(t, t.TempDir(), "other")
	port := freePorts(t, 1)[0]
	route := fmt.Sprintf("nats://127.0.0.1:%d", port)
	node := startRouteNode(t, ClusterOptions{Name: "test", Addr: fmt.Sprintf("127.0.0.1:%d", port), Routes: []string{route},
		User: "route", Password: "pw", TLSCert: files.cert, TLSKey: files.key, TLSCA: files.ca})
	creds := fmt.Sprintf("nats://route:pw@127.0.0.1:%d", port)
	routePeer(t, "plain", creds, nil)
	routePeer(t, "stranger", creds, other.tlsConfig(t))
	routePeer(t, "friend", creds, files.tlsConfig(t))
	onlyFriendJoins(t, node, "friend")
}

// routeCerts are the files of a CA and of a certificate it signed for 127.0.0.1.
type routeCerts struct{ ca, cert, key string }

func (f routeCerts) tlsConfig(t *testing.T) *tls.Config {
	t.Helper()
	tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: f.cert, KeyFile: f.key, CaFile: f.ca, Verify: true})
	if err != nil {
		t.Fatal(err)
	}
	tc.ClientAuth, tc.RootCAs = tls.RequireAndVerifyClientCert, tc.ClientCAs
	return tc
}

func writeRouteCerts(t *testing.T, dir, name string) routeCerts {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "node"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	f := routeCerts{ca: filepath.Join(dir, name+"-ca.pem"), cert: filepath.Join(dir, name+"-cert.pem"), key: filepath.Join(dir, name+"-key.pem")}
	for path, block := range map[string]*pem.Block{
		f.ca: {Type: "CERTIFICATE", Bytes: caDER}, f.cert: {Type: "CERTIFICATE", Bytes: der}, f.key: {Type: "PRIVATE KEY", Bytes: kder},
	} {
		if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return f
}
