package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
)

// TestExternalNATSCredentials runs a gateway on an existing NATS deployment that requires
// credentials, for each way README documents (GATEWAY_NATS_USER and GATEWAY_NATS_PASSWORD,
// GATEWAY_NATS_TOKEN, GATEWAY_NATS_CREDS): with the right ones it serves, with wrong ones,
// or none, it refuses to start with one ERROR line saying why.
func TestExternalNATSCredentials(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		// deployment runs a deployment requiring credentials, and returns the settings
		// of its right credentials and of wrong ones.
		deployment func(t *testing.T) (url string, right, wrong []string)
	}{
		{"user and password", func(t *testing.T) (string, []string, []string) {
			ns := runNATSWith(t, func(o *server.Options) { o.Username, o.Password = "gateway", "s3cret-pass" })
			return ns.ClientURL(), []string{"GATEWAY_NATS_USER=gateway", "GATEWAY_NATS_PASSWORD=s3cret-pass"},
				[]string{"GATEWAY_NATS_USER=gateway", "GATEWAY_NATS_PASSWORD=wrong-pass"}
		}},
		{"token", func(t *testing.T) (string, []string, []string) {
			ns := runNATSWith(t, func(o *server.Options) { o.Authorization = "s3cret-token" })
			return ns.ClientURL(), []string{"GATEWAY_NATS_TOKEN=s3cret-token"}, []string{"GATEWAY_NATS_TOKEN=wrong-token"}
		}},
		{"creds file", func(t *testing.T) (string, []string, []string) {
			url, right, wrong := runOperatorNATS(t, func(*server.Options) {})
			return url, []string{"GATEWAY_NATS_CREDS=" + right}, []string{"GATEWAY_NATS_CREDS=" + wrong}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			url, right, wrong := tc.deployment(t)
			for _, refused := range []struct {
				name string
				env  []string
			}{{"wrong", wrong}, {"none", nil}} {
				env := append([]string{"GATEWAY_NATS_URL=" + url}, refused.env...)
				code, lines := runGateway(t, startTimeout, t.TempDir(), nil, env...)
				t.Logf("%s credentials:", refused.name)
				checkStartFailure(t, code, lines, 1, "GATEWAY_NATS_URL", url, "authorization")
			}
			g := startGateway(t, append([]string{"GATEWAY_NATS_URL=" + url}, right...)...)
			s := g.subscribe(t, "topic=ext.creds")
			res := g.publish(t, "ext.creds", "", "through the deployment")
			if ev := s.next(t); ev.ID != res.ID || ev.Data != "through the deployment" {
				t.Fatalf("got %+v, want %s", ev, res.ID)
			}
		})
	}
}

// TestLeafNodeCreds runs a gateway as a leaf node of a deployment whose leaf connections
// authenticate with a .creds file (GATEWAY_NATS_CREDS with GATEWAY_LEAF_REMOTES): with the
// right file, its events are stored in the deployment's stream; with a wrong one, or none,
// it refuses to start with one ERROR line saying why, rather than wait for the stream.
func TestLeafNodeCreds(t *testing.T) {
	t.Parallel()
	leafPort := freePorts(t, 1)[0]
	url, right, wrong := runOperatorNATS(t, func(o *server.Options) {
		o.JetStreamDomain = "hub"
		o.LeafNode = server.LeafNodeOpts{Host: "127.0.0.1", Port: leafPort}
	})
	leaf := []string{fmt.Sprintf("GATEWAY_LEAF_REMOTES=nats://127.0.0.1:%d", leafPort), "GATEWAY_JS_DOMAIN=hub"}
	for _, refused := range []struct {
		name string
		env  []string
	}{{"wrong", []string{"GATEWAY_NATS_CREDS=" + wrong}}, {"none", nil}} {
		code, lines := runGateway(t, startTimeout, t.TempDir(), nil, append(leaf, refused.env...)...)
		t.Logf("%s credentials:", refused.name)
		checkStartFailure(t, code, lines, 1, "GATEWAY_NATS_CREDS", "Authorization Violation")
	}

	g := startGateway(t, append(leaf, "GATEWAY_NATS_CREDS="+right)...)
	s := g.subscribe(t, "topic=leaf.creds")
	res := g.publish(t, "leaf.creds", "", "through the deployment")
	if ev := s.next(t); ev.ID != res.ID || ev.Data != "through the deployment" {
		t.Fatalf("got %+v, want %s", ev, res.ID)
	}
	nc, err := nats.Connect(url, nats.UserCredentials(right))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), eventTimeout)
	defer cancel()
	stream, err := js.Stream(ctx, "NATSSE")
	if err != nil {
		t.Fatalf("the deployment's stream: %v", err)
	}
	msg, err := stream.GetLastMsgForSubject(ctx, "sse.leaf.creds")
	if err != nil || msg.Sequence != res.Seq || string(msg.Data) != "through the deployment" {
		t.Fatalf("the deployment's stream: %+v %v, want event %d", msg, err, res.Seq)
	}
}

// TestExternalNATSURLs runs gateways on a deployment listed in GATEWAY_NATS_URL among
// URLs where nothing listens: each connects whatever the order, and one with only
// the dead URL refuses to start.
func TestExternalNATSURLs(t *testing.T) {
	t.Parallel()
	alive := runNATS(t, "", 0).ClientURL()
	dead := fmt.Sprintf("nats://127.0.0.1:%d", freePorts(t, 1)[0])
	for name, urls := range map[string][]string{"dead first": {dead, alive}, "dead last": {alive, dead}, "two dead first": {dead, dead, alive}} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			g := startGateway(t, "GATEWAY_NATS_URL="+strings.Join(urls, ","))
			s := g.subscribe(t, "topic=ext.urls")
			res := g.publish(t, "ext.urls", "", "through the live one")
			if ev := s.next(t); ev.ID != res.ID {
				t.Fatalf("got %+v, want %s", ev, res.ID)
			}
		})
	}
	t.Run("dead only", func(t *testing.T) {
		t.Parallel()
		code, lines := runGateway(t, startTimeout, t.TempDir(), nil, "GATEWAY_NATS_URL="+dead)
		checkStartFailure(t, code, lines, 1, "GATEWAY_NATS_URL", dead)
	})
}

// runOperatorNATS runs a deployment whose users authenticate with .creds files (a user JWT
// signed by its account's key, and the user's seed), with JetStream in the account and the
// options change sets. It returns its URL, a .creds file of one of its users, and one of a
// user of another account, which it does not know.
func runOperatorNATS(t *testing.T, change func(*server.Options)) (url, right, wrong string) {
	t.Helper()
	operator := mustKeys(t, nkeys.CreateOperator)
	account := mustKeys(t, nkeys.CreateAccount)
	ac := jwt.NewAccountClaims(publicKey(t, account))
	ac.Limits.JetStreamLimits = jwt.JetStreamLimits{MemoryStorage: -1, DiskStorage: -1, Streams: -1, Consumer: -1}
	accountJWT, err := ac.Encode(operator)
	if err != nil {
		t.Fatal(err)
	}
	system := mustKeys(t, nkeys.CreateAccount) // JetStream needs a system account
	systemJWT, err := jwt.NewAccountClaims(publicKey(t, system)).Encode(operator)
	if err != nil {
		t.Fatal(err)
	}
	resolver := &server.MemAccResolver{}
	for pub, claims := range map[string]string{publicKey(t, account): accountJWT, publicKey(t, system): systemJWT} {
		if err := resolver.Store(pub, claims); err != nil {
			t.Fatal(err)
		}
	}
	ns := runNATSWith(t, func(o *server.Options) {
		o.TrustedKeys = []string{publicKey(t, operator)}
		o.AccountResolver = resolver
		o.SystemAccount = publicKey(t, system)
		change(o)
	})
	dir := t.TempDir()
	return ns.ClientURL(), userCreds(t, account, filepath.Join(dir, "right.creds")),
		userCreds(t, mustKeys(t, nkeys.CreateAccount), filepath.Join(dir, "wrong.creds"))
}

// userCreds writes the .creds file of a new user of account to path.
func userCreds(t *testing.T, account nkeys.KeyPair, path string) string {
	t.Helper()
	user := mustKeys(t, nkeys.CreateUser)
	userJWT, err := jwt.NewUserClaims(publicKey(t, user)).Encode(account)
	if err != nil {
		t.Fatal(err)
	}
	seed, err := user.Seed()
	if err != nil {
		t.Fatal(err)
	}
	creds, err := jwt.FormatUserConfig(userJWT, seed)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, creds, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func mustKeys(t *testing.T, create func() (nkeys.KeyPair, error)) nkeys.KeyPair {
	t.Helper()
	kp, err := create()
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

func publicKey(t *testing.T, kp nkeys.KeyPair) string {
	t.Helper()
	pub, err := kp.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	return pub
}
