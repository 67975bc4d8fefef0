package auth

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"

	"github.com/natsse/natsse/natsbus"
)

// Options configure a Verifier. Set exactly one of Secret, PublicKeyPEM and JWKSURL.
type Options struct {
	// Secret is an HMAC key: tokens are signed with HS256, HS384 or HS512.
	Secret []byte
	// PublicKeyPEM is a PEM public key (RSA: RS* and PS*; ECDSA: the ES* of its curve;
	// Ed25519: EdDSA).
	PublicKeyPEM []byte
	// JWKSURL is a JWKS endpoint whose keys sign tokens with RS*, PS*, ES* or EdDSA.
	JWKSURL string
	// HTTPClient fetches JWKSURL. Nil: a client with a 10 s timeout.
	HTTPClient *http.Client
	// Issuer and Audience, when set, must be the token's "iss" and one of its "aud".
	Issuer   string
	Audience string
	// Anonymous lists the topic filters that requests without a token may subscribe to.
	// Anonymous requests never publish.
	Anonymous []string
	// Logger receives the failures to refresh the JWKS. Nil discards them.
	Logger *slog.Logger
}

// checkJWKSURL accepts https, and http to this host only: keys fetched over plain HTTP
// from elsewhere could be replaced on the way.
func checkJWKSURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%s: want https://host/path", redact(raw))
	}
	switch {
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http":
		host := u.Hostname()
		if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
			return nil
		}
	}
	return fmt.Errorf("%s: want https (plain http only to this host)", redact(raw))
}

// redact is a URL without the credentials and the query it may carry, for logs.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(an unparsable URL)"
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return u.String()
}

// Enabled reports whether o sets a key, which turns authentication on.
func (o Options) Enabled() bool {
	return len(o.Secret) > 0 || len(o.PublicKeyPEM) > 0 || o.JWKSURL != ""
}

// Validate reports every field whose value cannot be used, each as a
// *natsbus.OptionError, joined with errors.Join. New calls it.
func (o Options) Validate() error {
	var errs []error
	bad := func(option, format string, args ...any) {
		errs = append(errs, &natsbus.OptionError{Package: "auth", Option: option, Reason: fmt.Sprintf(format, args...)})
	}
	keys := 0
	for _, set := range []bool{len(o.Secret) > 0, len(o.PublicKeyPEM) > 0, o.JWKSURL != ""} {
		if set {
			keys++
		}
	}
	if keys > 1 {
		bad("Secret", "set one of a secret, a public key and a JWKS URL, not %d", keys)
	}
	if n := len(o.Secret); n > 0 && n < 32 {
		bad("Secret", "%d bytes: at least 32, as HS256 needs", n)
	}
	if o.JWKSURL != "" {
		if err := checkJWKSURL(o.JWKSURL); err != nil {
			bad("JWKSURL", "%v", err)
		}
	}
	for _, f := range o.Anonymous {
		if err := natsbus.ValidateFilter(f); err != nil {
			bad("Anonymous", "%v", err)
		}
	}
	return errors.Join(errs...)
}
