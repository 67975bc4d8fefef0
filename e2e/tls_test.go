package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// writeCert writes a self-signed certificate for 127.0.0.1 with serial, and its key, into
// dir as cert.pem and key.pem, and returns the certificate.
func writeCert(tb testing.TB, dir string, serial int64) *x509.Certificate {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "natsse e2e"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	// Write the key first and the certificate last, each by a rename, so that a reader
	// never sees half a pair for long.
	for _, f := range []struct {
		name, typ string
		der       []byte
	}{{"key.pem", "PRIVATE KEY", kder}, {"cert.pem", "CERTIFICATE", der}} {
		tmp := filepath.Join(dir, f.name+".tmp")
		if err := os.WriteFile(tmp, pem.EncodeToMemory(&pem.Block{Type: f.typ, Bytes: f.der}), 0o600); err != nil {
			tb.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, f.name)); err != nil {
			tb.Fatal(err)
		}
	}
	cert, _ := x509.ParseCertificate(der)
	return cert
}

// useClient makes g's helpers talk to it at base with transport.
func (g *gatewayProc) useClient(base string, transport *http.Transport) {
	g.base = base
	g.client = &http.Client{Transport: transport}
}

// insecureTransport trusts any certificate: for a test that checks the browser's view.
func insecureTransport() *http.Transport {
	return &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
}

// checkManyStreams opens n streams to g over one client and checks that each is HTTP/2
// and receives an event published after all are open.
func checkManyStreams(t *testing.T, g *gatewayProc, n int) {
	t.Helper()
	streams := make([]*sseStream, n)
	for i := range streams {
		streams[i] = g.subscribe(t, "topic=many")
		if p := streams[i].resp.ProtoMajor; p != 2 {
			t.Fatalf("stream %d over HTTP/%d, want HTTP/2", i, p)
		}
	}
	res := g.publish(t, "many", "", "to all")
	for i, s := range streams {
		if ev := s.next(t); ev.ID != res.ID {
			t.Fatalf("stream %d got %+v, want %s", i, ev, res.ID)
		}
	}
}

// TestTLS serves HTTPS: ten streams share one HTTP/2 connection, and a new certificate is
// served without dropping them.
func TestTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	first := writeCert(t, dir, 1)
	g := startGateway(t, "GATEWAY_TLS_CERT_FILE="+filepath.Join(dir, "cert.pem"), "GATEWAY_TLS_KEY_FILE="+filepath.Join(dir, "key.pem"))
	roots := x509.NewCertPool()
	roots.AddCert(first)
	g.useClient("https://"+g.httpAddr, &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: true})
	checkManyStreams(t, g, 10)
	s := g.subscribe(t, "topic=kept")

	second := writeCert(t, dir, 2)
	roots.AddCert(second)
	pollUntil(t, 20*time.Second, "the new certificate served", func() bool { return servedSerial(g, roots) == 2 })
	res := g.publish(t, "kept", "", "after the reload")
	if ev := s.next(t); ev.ID != res.ID {
		t.Fatalf("the stream opened before the reload got %+v, want %s", ev, res.ID)
	}

	// Files replaced with their old modification time go unnoticed, until SIGHUP.
	var mtimes []time.Time
	for _, f := range []string{"cert.pem", "key.pem"} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		mtimes = append(mtimes, fi.ModTime())
	}
	roots.AddCert(writeCert(t, dir, 3))
	for i, f := range []string{"cert.pem", "key.pem"} {
		if err := os.Chtimes(filepath.Join(dir, f), mtimes[i], mtimes[i]); err != nil {
			t.Fatal(err)
		}
	}
	g.signal(t, syscall.SIGHUP)
	pollUntil(t, 20*time.Second, "the certificate served after SIGHUP", func() bool { return servedSerial(g, roots) == 3 })
}

// servedSerial is the serial number of the certificate g serves, or 0.
func servedSerial(g *gatewayProc, roots *x509.CertPool) int64 {
	c, err := tls.Dial("tcp", g.httpAddr, &tls.Config{RootCAs: roots})
	if err != nil {
		return 0
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
}

// TestH2C serves cleartext HTTP/2 to a client with prior knowledge, as a proxy would use it.
func TestH2C(t *testing.T) {
	t.Parallel()
	g := startGateway(t, "GATEWAY_H2C=true")
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	g.useClient("http://"+g.httpAddr, tr)
	checkManyStreams(t, g, 10)
}
