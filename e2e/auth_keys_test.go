package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// signedBy is a token granting topics to subscribe to, signed with method and key.
func signedBy(tb testing.TB, method jwt.SigningMethod, key any, kid string, topics ...string) string {
	tb.Helper()
	tok := jwt.NewWithClaims(method, jwt.MapClaims{"sub": "u", "exp": time.Now().Add(time.Hour).Unix(),
		"natsse": map[string]any{"subscribe": topics}})
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// TestAuthPublicKey runs a gateway whose tokens are checked with an ES256 public key file:
// a token signed with the private key opens a stream; the classic confusion, an HS256 token
// whose secret is the public key itself, and alg none are refused.
func TestAuthPublicKey(t *testing.T) {
	t.Parallel()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	file := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(file, pemKey, 0o600); err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, "GATEWAY_AUTH_PUBLIC_KEY_FILE="+file)
	g.subscribeWith(t, "topic=a", streamOpts{header: bearer(signedBy(t, jwt.SigningMethodES256, key, "", "a"))})
	for what, tok := range map[string]string{
		"HS256 with the public key as secret": signedBy(t, jwt.SigningMethodHS256, pemKey, "", "a"),
		"alg none":                            signedBy(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "", "a"),
	} {
		resp, body := g.do(t, http.MethodGet, "/events?topic=a", nil, bearer(tok))
		expectRefused(t, what, resp, body, 401, "unauthorized", `Bearer error="invalid_token"`)
	}
	// A token too large for the header limit gets the usual 431.
	resp, body := g.do(t, http.MethodGet, "/events?topic=a", nil, bearer(strings.Repeat("x", 40<<10)))
	expectRefused(t, "a huge token", resp, body, http.StatusRequestHeaderFieldsTooLarge, "headers_too_large", "")
}

// TestAuthJWKS runs a gateway whose keys come from a JWKS endpoint, and rotates the key
// there: a token signed with the new key is accepted at once.
func TestAuthJWKS(t *testing.T) {
	t.Parallel()
	k1, _ := rsa.GenerateKey(rand.Reader, 2048)
	k2, _ := rsa.GenerateKey(rand.Reader, 2048)
	jwks := func(kid string, k *rsa.PublicKey) []byte {
		b64 := base64.RawURLEncoding.EncodeToString
		b, _ := json.Marshal(map[string]any{"keys": []map[string]string{{
			"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig", "n": b64(k.N.Bytes()), "e": b64(big.NewInt(int64(k.E)).Bytes()),
		}}})
		return b
	}
	var served atomic.Pointer[[]byte]
	first := jwks("k1", &k1.PublicKey)
	served.Store(&first)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(*served.Load())
	}))
	defer srv.Close()
	g := startGateway(t, "GATEWAY_AUTH_JWKS_URL="+srv.URL, "GATEWAY_AUTH_AUDIENCE=")
	g.subscribeWith(t, "topic=a", streamOpts{header: bearer(signedBy(t, jwt.SigningMethodRS256, k1, "k1", "a"))})
	rotated := jwks("k2", &k2.PublicKey)
	served.Store(&rotated)
	g.subscribeWith(t, "topic=a", streamOpts{header: bearer(signedBy(t, jwt.SigningMethodRS256, k2, "k2", "a"))})
	resp, body := g.do(t, http.MethodGet, "/events?topic=a", nil, bearer(signedBy(t, jwt.SigningMethodRS256, k2, "k9", "a")))
	expectRefused(t, "an unknown kid", resp, body, 401, "unauthorized", `Bearer error="invalid_token"`)
}
