package gateway

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/natsse/natsse/auth"
)

// accessTokenParam is the query parameter that may carry a token, for clients that can
// set neither a header nor a cookie.
const accessTokenParam = "access_token"

// Errors of authorization; an invalid token is an auth.ErrInvalidToken.
var (
	errNoToken   = errors.New("unauthorized")
	errForbidden = errors.New("forbidden")
)

// tokenSources are where a request's token may come from.
type tokenSources struct{ cookie bool }

var (
	streamTokens  = tokenSources{cookie: true}
	publishTokens = tokenSources{cookie: false} // a cross-site form cannot publish with the cookie
)

// grants returns what the request's token grants, the anonymous grants when it carries no
// token, or nil when auth is off (everything is allowed). The first source present
// decides: the Authorization header, then the cookie (where allowed), then the
// access_token parameter. A token that is present but invalid is refused, never taken for
// anonymous.
func (g *Gateway) grants(c *gin.Context, from tokenSources) (*auth.Grants, error) {
	if g.opts.Auth == nil {
		return nil, nil
	}
	token, found, err := g.token(c.Request, from)
	switch {
	case err != nil:
		return nil, err
	case !found:
		return g.opts.Auth.Anonymous(), nil
	}
	return g.opts.Auth.Verify(token)
}

func (g *Gateway) token(r *http.Request, from tokenSources) (token string, found bool, err error) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, token, _ := strings.Cut(h, " ")
		if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
			return "", true, fmt.Errorf("%w: the Authorization header is not \"Bearer <token>\"", auth.ErrInvalidToken)
		}
		return strings.TrimSpace(token), true, nil
	}
	if from.cookie {
		if ck, err := r.Cookie(g.opts.AuthCookie); err == nil {
			return ck.Value, true, nil
		}
	}
	if q := r.URL.Query(); q.Has(accessTokenParam) {
		return q.Get(accessTokenParam), true, nil
	}
	return "", false, nil
}

// authorizeStream checks that every filter of a stream lies inside a granted subscribe
// filter, or inside the anonymous ones: a token never allows less than none.
func (g *Gateway) authorizeStream(gr *auth.Grants, filters []string) error {
	if gr == nil {
		return nil
	}
	for _, f := range filters {
		if gr.CanSubscribe(f) || g.opts.Auth.Anonymous().CanSubscribe(f) {
			continue
		}
		if gr.Anonymous {
			return wrapf(errNoToken, "a token is needed to subscribe to %q", truncate(f, 64))
		}
		return wrapf(errForbidden, "the token does not grant subscribing to %q", truncate(f, 64))
	}
	return nil
}

// authorizePublish checks that a granted publish filter matches topic.
func authorizePublish(gr *auth.Grants, topic string) error {
	switch {
	case gr == nil:
		return nil
	case gr.Anonymous:
		return wrapf(errNoToken, "a token is needed to publish")
	case !gr.CanPublish(topic):
		return wrapf(errForbidden, "the token does not grant publishing on %q", truncate(topic, 64))
	}
	return nil
}
