package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"
)

// Leeway is the clock skew allowed on a token's "exp" and "nbf".
const Leeway = 5 * time.Second

// ErrInvalidToken reports a token that is refused: its message says why, never what the
// token holds.
var ErrInvalidToken = errors.New("invalid token")

// Verifier checks tokens and turns them into Grants.
type Verifier struct {
	parser    *jwt.Parser
	keyfunc   jwt.Keyfunc
	anonymous *Grants
	stop      context.CancelFunc // ends the JWKS refresh; nil without a JWKS
	checked   checkedTokens
}

// Checked tokens are remembered for a while, so that a service sending the same token with
// every publish has it checked once a minute rather than every time.
const (
	checkedFor       = time.Minute
	checkedTokensMax = 10000
)

// checkedTokens remembers the grants of tokens checked lately, by the whole token.
type checkedTokens struct {
	mu     sync.Mutex
	grants map[string]checkedToken
}

type checkedToken struct {
	grants *Grants
	until  time.Time // the earlier of exp (with the leeway) and a minute after the check
}

func (c *checkedTokens) get(token string, now time.Time) *Grants {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t, ok := c.grants[token]; ok && now.Before(t.until) {
		return t.grants
	}
	return nil
}

func (c *checkedTokens) put(token string, g *Grants, now time.Time) {
	until := now.Add(checkedFor)
	if exp := g.Expires.Add(Leeway); exp.Before(until) {
		until = exp
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.grants == nil || len(c.grants) >= checkedTokensMax {
		c.grants = make(map[string]checkedToken)
	}
	c.grants[token] = checkedToken{grants: g, until: until}
}

// New returns a Verifier for opts, which must set a key (see Options.Enabled). With a
// JWKS URL, the keys are fetched at once; a failure is logged, and tokens are refused
// until a later fetch succeeds.
func New(opts Options) (*Verifier, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if !opts.Enabled() {
		return nil, errors.New("auth: no key: set a secret, a public key or a JWKS URL")
	}
	v := &Verifier{anonymous: &Grants{Anonymous: true, Subscribe: append([]string(nil), opts.Anonymous...)}}
	var methods []string
	switch {
	case len(opts.Secret) > 0:
		secret := append([]byte(nil), opts.Secret...)
		methods = []string{"HS256", "HS384", "HS512"}
		v.keyfunc = func(*jwt.Token) (any, error) { return secret, nil }
	case len(opts.PublicKeyPEM) > 0:
		key, m, err := parsePublicKey(opts.PublicKeyPEM)
		if err != nil {
			return nil, err
		}
		methods = m
		v.keyfunc = func(*jwt.Token) (any, error) { return key, nil }
	default:
		kf, stop, err := newJWKS(opts)
		if err != nil {
			return nil, err
		}
		methods = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
		v.keyfunc, v.stop = kf, stop
	}
	popts := []jwt.ParserOption{
		jwt.WithValidMethods(methods),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(Leeway),
	}
	if opts.Issuer != "" {
		popts = append(popts, jwt.WithIssuer(opts.Issuer))
	}
	if opts.Audience != "" {
		popts = append(popts, jwt.WithAudience(opts.Audience))
	}
	v.parser = jwt.NewParser(popts...)
	return v, nil
}

// parsePublicKey reads a PEM public key and the algorithms it verifies.
func parsePublicKey(data []byte) (any, []string, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, nil, errors.New("auth: public key: no PEM block")
	}
	key, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		if k, err2 := x509.ParsePKCS1PublicKey(block.Bytes); err2 == nil {
			key, err = k, nil
		}
	}
	if err != nil {
		return nil, nil, fmt.Errorf("auth: public key: %w", err)
	}
	switch k := key.(type) {
	case *rsa.PublicKey:
		return k, []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}, nil
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return k, []string{"ES256"}, nil
		case elliptic.P384():
			return k, []string{"ES384"}, nil
		case elliptic.P521():
			return k, []string{"ES512"}, nil
		}
		return nil, nil, fmt.Errorf("auth: public key: ECDSA curve %s is not one JWT uses", k.Curve.Params().Name)
	case ed25519.PublicKey:
		return k, []string{"EdDSA"}, nil
	}
	return nil, nil, fmt.Errorf("auth: public key: %T is not an RSA, ECDSA or Ed25519 key", key)
}

// newJWKS starts the JWKS client: it refreshes the keys every hour, and when a token names
// an unknown key, at most every 30 s.
func newJWKS(opts Options) (jwt.Keyfunc, context.CancelFunc, error) {
	client := opts.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	kf, err := keyfunc.NewDefaultOverrideCtx(ctx, []string{opts.JWKSURL}, keyfunc.Override{
		Client:            client,
		RefreshInterval:   time.Hour,
		RefreshUnknownKID: rate.NewLimiter(rate.Every(30*time.Second), 1),
		RateLimitWaitMax:  time.Second,
		RefreshErrorHandlerFunc: func(u string) func(context.Context, error) {
			return func(_ context.Context, err error) {
				log.Warn("auth: cannot fetch the JWKS", "url", redact(u), "err", redactErr(err, u))
			}
		},
	})
	if err != nil {
		cancel()
		return nil, nil, fmt.Errorf("auth: JWKS %s: %s", redact(opts.JWKSURL), redactErr(err, opts.JWKSURL))
	}
	return kf.Keyfunc, cancel, nil
}

// redactErr is err's text without raw, the URL it may repeat.
func redactErr(err error, raw string) string {
	return strings.ReplaceAll(err.Error(), raw, redact(raw))
}

// Verify checks token and returns what it grants. An error wraps ErrInvalidToken and says
// what was wrong, in words fit for the client.
func (v *Verifier) Verify(token string) (*Grants, error) {
	now := time.Now()
	if g := v.checked.get(token, now); g != nil {
		return g, nil
	}
	var c claims
	t, err := v.parser.ParseWithClaims(token, &c, v.keyfunc)
	if err != nil || !t.Valid {
		return nil, fmt.Errorf("%w: %s", ErrInvalidToken, reason(err))
	}
	g, err := c.grants()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	v.checked.put(token, g, now)
	return g, nil
}

// reason is a parse error in words that name no key and no token content.
func reason(err error) string {
	switch {
	case err == nil:
		return "not valid"
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "malformed"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "no exp claim"
	case errors.Is(err, jwt.ErrTokenExpired):
		return "expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return "not valid yet"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return "wrong issuer"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "wrong audience"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		if strings.Contains(err.Error(), "signing method") {
			return "signing algorithm not accepted"
		}
		return "bad signature"
	case errors.Is(err, jwt.ErrTokenInvalidClaims):
		return "malformed claims"
	}
	return "not valid"
}

// Anonymous returns the grants of a request without a token: the Options.Anonymous
// filters to subscribe to, nothing to publish.
func (v *Verifier) Anonymous() *Grants { return v.anonymous }

// Close stops refreshing the JWKS. It is idempotent.
func (v *Verifier) Close() error {
	if v.stop != nil {
		v.stop()
	}
	return nil
}
