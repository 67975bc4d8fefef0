package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var testSecret = []byte("0123456789abcdef0123456789abcdef")

// token returns the claims of a token valid for an hour, granting what it is given.
func token(sub string, subscribe, publish []string) jwt.MapClaims {
	return jwt.MapClaims{
		"sub":    sub,
		"exp":    time.Now().Add(time.Hour).Unix(),
		"natsse": map[string]any{"subscribe": subscribe, "publish": publish},
	}
}

// sign signs claims with method and key, naming kid when it is not empty.
func sign(t testing.TB, method jwt.SigningMethod, key any, kid string, c jwt.Claims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func pemOf(t testing.TB, pub crypto.PublicKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func newVerifier(t testing.TB, opts Options) *Verifier {
	t.Helper()
	v, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	return v
}

// refused checks that v refuses tok, saying why.
func refused(t *testing.T, v *Verifier, tok, why string) {
	t.Helper()
	g, err := v.Verify(tok)
	if !errors.Is(err, ErrInvalidToken) || !strings.Contains(err.Error(), why) {
		t.Errorf("Verify: %v, %v; want ErrInvalidToken saying %q", g, err, why)
	}
}

func TestVerifyHMAC(t *testing.T) {
	t.Parallel()
	v := newVerifier(t, Options{Secret: testSecret, Issuer: "https://issuer", Audience: "natsse", Anonymous: []string{"public.>"}})
	valid := func() jwt.MapClaims {
		c := token("42", []string{"orders.*", "users.{sub}.>"}, []string{"orders.created"})
		c["iss"], c["aud"] = "https://issuer", []string{"other", "natsse"}
		return c
	}
	g, err := v.Verify(sign(t, jwt.SigningMethodHS256, testSecret, "", valid()))
	if err != nil {
		t.Fatal(err)
	}
	if g.Subject != "42" || strings.Join(g.Subscribe, " ") != "orders.* users.42.>" || strings.Join(g.Publish, " ") != "orders.created" {
		t.Fatalf("grants %+v", g)
	}
	if !g.CanSubscribe("users.42.x") || g.CanSubscribe("users.43.x") || g.Expires.Before(time.Now()) {
		t.Fatalf("grants %+v: user 42 may read users.42.x, not users.43.x, until exp", g)
	}
	if a := v.Anonymous(); !a.CanSubscribe("public.news") || a.CanSubscribe("orders.eu") || a.CanPublish("public.news") {
		t.Fatalf("anonymous grants %+v", a)
	}

	with := func(change func(jwt.MapClaims)) jwt.MapClaims { c := valid(); change(c); return c }
	for _, tc := range []struct {
		name, token, why string
	}{
		{"alg none", sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "", valid()), "algorithm"},
		{"other secret", sign(t, jwt.SigningMethodHS256, []byte("another secret, long enough, 32 b"), "", valid()), "signature"},
		{"expired", sign(t, jwt.SigningMethodHS256, testSecret, "", with(func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Minute).Unix() })), "expired"},
		{"not yet valid", sign(t, jwt.SigningMethodHS256, testSecret, "", with(func(c jwt.MapClaims) { c["nbf"] = time.Now().Add(time.Minute).Unix() })), "not valid yet"},
		{"no exp", sign(t, jwt.SigningMethodHS256, testSecret, "", with(func(c jwt.MapClaims) { delete(c, "exp") })), "no exp"},
		{"wrong issuer", sign(t, jwt.SigningMethodHS256, testSecret, "", with(func(c jwt.MapClaims) { c["iss"] = "https://evil" })), "issuer"},
		{"wrong audience", sign(t, jwt.SigningMethodHS256, testSecret, "", with(func(c jwt.MapClaims) { c["aud"] = "other" })), "audience"},
		{"garbage", "not.a.token", "malformed"},
		{"empty", "", "malformed"},
		{"claims of the wrong shape", sign(t, jwt.SigningMethodHS256, testSecret, "", with(func(c jwt.MapClaims) { c["natsse"] = map[string]any{"subscribe": "orders.>"} })), "malformed"},
		{"{sub} without sub", sign(t, jwt.SigningMethodHS256, testSecret, "", with(func(c jwt.MapClaims) { delete(c, "sub") })), "no sub"},
		{"{sub} of two tokens", sign(t, jwt.SigningMethodHS256, testSecret, "", with(func(c jwt.MapClaims) { c["sub"] = "4.2" })), "single topic token"},
		{"{sub} a wildcard", sign(t, jwt.SigningMethodHS256, testSecret, "", with(func(c jwt.MapClaims) { c["sub"] = ">" })), "single topic token"},
		{"bad filter", sign(t, jwt.SigningMethodHS256, testSecret, "", with(func(c jwt.MapClaims) {
			c["natsse"] = map[string]any{"subscribe": []string{"a..b"}}
		})), "invalid topic"},
	} {
		t.Run(tc.name, func(t *testing.T) { refused(t, v, tc.token, tc.why) })
	}
	t.Run("within the leeway", func(t *testing.T) {
		tok := sign(t, jwt.SigningMethodHS256, testSecret, "", with(func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-Leeway / 2).Unix() }))
		if _, err := v.Verify(tok); err != nil {
			t.Fatalf("expired %s ago, within the leeway of %s: %v", Leeway/2, Leeway, err)
		}
	})
}

func TestVerifyPublicKey(t *testing.T) {
	t.Parallel()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	edPub, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	c := token("svc", []string{"orders.>"}, nil)
	for _, tc := range []struct {
		name   string
		pub    crypto.PublicKey
		method jwt.SigningMethod
		key    any
	}{
		{"RS256", &rsaKey.PublicKey, jwt.SigningMethodRS256, rsaKey},
		{"PS512", &rsaKey.PublicKey, jwt.SigningMethodPS512, rsaKey},
		{"ES256", &ecKey.PublicKey, jwt.SigningMethodES256, ecKey},
		{"EdDSA", edPub, jwt.SigningMethodEdDSA, edKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			pemKey := pemOf(t, tc.pub)
			v := newVerifier(t, Options{PublicKeyPEM: pemKey})
			if g, err := v.Verify(sign(t, tc.method, tc.key, "", c)); err != nil || !g.CanSubscribe("orders.eu") {
				t.Fatalf("Verify: %+v, %v", g, err)
			}
			// The public key used as an HMAC secret: the classic confusion.
			refused(t, v, sign(t, jwt.SigningMethodHS256, pemKey, "", c), "algorithm")
			refused(t, v, sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "", c), "algorithm")
		})
	}
	t.Run("ES384 against a P-256 key", func(t *testing.T) {
		t.Parallel()
		v := newVerifier(t, Options{PublicKeyPEM: pemOf(t, &ecKey.PublicKey)})
		other, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		refused(t, v, sign(t, jwt.SigningMethodES384, other, "", c), "algorithm")
	})
	if _, err := New(Options{PublicKeyPEM: []byte("not a key")}); err == nil {
		t.Error("New accepted a public key that is not PEM")
	}
}

// jwksOf is the JWKS of RSA keys, by kid.
func jwksOf(keys map[string]*rsa.PublicKey) []byte {
	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	b64 := base64.RawURLEncoding.EncodeToString
	for kid, k := range keys {
		set.Keys = append(set.Keys, map[string]string{
			"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig",
			"n": b64(k.N.Bytes()), "e": b64(big.NewInt(int64(k.E)).Bytes()),
		})
	}
	b, _ := json.Marshal(set)
	return b
}

// TestVerifyJWKS rotates the key of a JWKS endpoint: a token signed with the new key is
// accepted at once, by the refresh its unknown kid triggers.
func TestVerifyJWKS(t *testing.T) {
	t.Parallel()
	k1, _ := rsa.GenerateKey(rand.Reader, 2048)
	k2, _ := rsa.GenerateKey(rand.Reader, 2048)
	var served atomic.Pointer[[]byte]
	first := jwksOf(map[string]*rsa.PublicKey{"k1": &k1.PublicKey})
	served.Store(&first)
	var fetches atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Write(*served.Load())
	}))
	defer srv.Close()
	v := newVerifier(t, Options{JWKSURL: srv.URL, HTTPClient: srv.Client()})
	c := token("svc", []string{"a"}, nil)
	if _, err := v.Verify(sign(t, jwt.SigningMethodRS256, k1, "k1", c)); err != nil {
		t.Fatalf("k1: %v", err)
	}
	refused(t, v, sign(t, jwt.SigningMethodHS256, testSecret, "k1", c), "algorithm")

	rotated := jwksOf(map[string]*rsa.PublicKey{"k2": &k2.PublicKey})
	served.Store(&rotated)
	before := fetches.Load()
	if _, err := v.Verify(sign(t, jwt.SigningMethodRS256, k2, "k2", c)); err != nil {
		t.Fatalf("k2 after the rotation: %v", err)
	}
	if fetches.Load() == before {
		t.Fatal("the new key was accepted without fetching the JWKS again")
	}
	// Another unknown kid right after: refused without asking the endpoint again.
	before = fetches.Load()
	refused(t, v, sign(t, jwt.SigningMethodRS256, k2, "k3", c), "")
	if n := fetches.Load() - before; n != 0 {
		t.Fatalf("%d more fetches for a second unknown kid within 30 s, want none", n)
	}
}

func TestOptionsValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		opts Options
		want string
	}{
		{"two keys", Options{Secret: testSecret, JWKSURL: "http://x"}, "not 2"},
		{"short secret", Options{Secret: []byte("short")}, "at least 32"},
		{"bad anonymous filter", Options{Secret: testSecret, Anonymous: []string{"a..b"}}, "Anonymous"},
	} {
		if err := tc.opts.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error saying %q", tc.name, err, tc.want)
		}
	}
	if _, err := New(Options{}); err == nil {
		t.Error("New without a key succeeded")
	}
}

func TestJWKSURL(t *testing.T) {
	t.Parallel()
	for raw, ok := range map[string]bool{
		"https://idp.example/jwks": true, "http://127.0.0.1:8080/jwks": true, "http://localhost/jwks": true,
		"http://idp.example/jwks": false, "ftp://idp.example/jwks": false, "jwks.json": false,
	} {
		if err := checkJWKSURL(raw); (err == nil) != ok {
			t.Errorf("checkJWKSURL(%q) = %v", raw, err)
		}
	}
	err := Options{JWKSURL: "http://user:s3cret@idp.example/jwks?api_key=s3cret"}.Validate()
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error %v: want one that does not repeat the URL's credentials", err)
	}
}

// TestCheckedTokens checks that a remembered token is forgotten when it expires, and a
// minute after its check at the latest.
func TestCheckedTokens(t *testing.T) {
	t.Parallel()
	var c checkedTokens
	now := time.Now()
	soon := &Grants{Expires: now.Add(time.Second)}
	late := &Grants{Expires: now.Add(time.Hour)}
	c.put("soon", soon, now)
	c.put("late", late, now)
	for _, tc := range []struct {
		token string
		at    time.Duration
		want  *Grants
	}{
		{"soon", time.Second + Leeway - time.Millisecond, soon}, {"soon", time.Second + Leeway, nil},
		{"late", checkedFor - time.Millisecond, late}, {"late", checkedFor, nil}, {"other", 0, nil},
	} {
		if got := c.get(tc.token, now.Add(tc.at)); got != tc.want {
			t.Errorf("%s at +%s: %v, want %v", tc.token, tc.at, got, tc.want)
		}
	}
}
