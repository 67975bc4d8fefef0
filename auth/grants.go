package auth

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/natsse/natsse/natsbus"
)

// subPlaceholder in a granted filter stands for the token's subject.
const subPlaceholder = "{sub}"

// claims are a token's claims: the registered ones and the grants.
type claims struct {
	jwt.RegisteredClaims
	NATSSE struct {
		Subscribe []string `json:"subscribe"`
		Publish   []string `json:"publish"`
	} `json:"natsse"`
}

// Grants is what a token allows: topic filters to subscribe to and to publish on.
type Grants struct {
	Anonymous bool      // granted to a request without a token
	Subject   string    // the token's "sub"; "" for anonymous requests
	Expires   time.Time // the token's "exp"; zero for anonymous requests
	Subscribe []string  // filters; a stream's every filter must lie inside one of them
	Publish   []string  // filters; a published topic must match one of them
}

// grants checks the claimed filters and puts the subject in place of "{sub}".
func (c *claims) grants() (*Grants, error) {
	g := &Grants{Subject: c.Subject}
	if c.ExpiresAt != nil {
		g.Expires = c.ExpiresAt.Time
	}
	var err error
	if g.Subscribe, err = c.filters("subscribe", c.NATSSE.Subscribe); err != nil {
		return nil, err
	}
	if g.Publish, err = c.filters("publish", c.NATSSE.Publish); err != nil {
		return nil, err
	}
	return g, nil
}

func (c *claims) filters(kind string, claimed []string) ([]string, error) {
	out := make([]string, 0, len(claimed))
	for _, f := range claimed {
		if strings.Contains(f, subPlaceholder) {
			if err := checkSubject(c.Subject); err != nil {
				return nil, fmt.Errorf("natsse.%s filter %q uses {sub}, but %w", kind, f, err)
			}
			f = strings.ReplaceAll(f, subPlaceholder, c.Subject)
		}
		if err := natsbus.ValidateFilter(f); err != nil {
			return nil, fmt.Errorf("natsse.%s: %w", kind, err)
		}
		out = append(out, f)
	}
	return out, nil
}

// checkSubject accepts a subject that can stand for one topic token.
func checkSubject(sub string) error {
	switch {
	case sub == "":
		return errors.New("the token has no sub")
	case strings.ContainsAny(sub, ".*>"), natsbus.ValidateTopic(sub) != nil:
		return errors.New("its sub is not a single topic token (no '.', '*', '>' or white space)")
	}
	return nil
}

// CanSubscribe reports whether filter lies inside one of the granted subscribe filters:
// every topic it matches, a granted filter matches too.
func (g *Grants) CanSubscribe(filter string) bool { return inside(filter, g.Subscribe) }

// CanPublish reports whether a granted publish filter matches topic.
func (g *Grants) CanPublish(topic string) bool { return inside(topic, g.Publish) }

// inside reports whether filter lies inside one of grants, by NATS's own subset rule.
func inside(filter string, grants []string) bool {
	for _, gr := range grants {
		if server.SubjectMatchesFilter(filter, gr) {
			return true
		}
	}
	return false
}
