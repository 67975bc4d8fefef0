package natsbus

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"log/slog"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// ClientAuth checks the token that a NATS client presents to the embedded server's client
// listener and says what the client may do. An error refuses the connection.
type ClientAuth func(token string) (ClientGrants, error)

// ClientGrants is what a NATS client may do, in topics (subjects without the prefix).
type ClientGrants struct {
	Name      string    // who the client is, for the server's events and logs
	Publish   []string  // topic filters it may publish on
	Subscribe []string  // topic filters it may subscribe to
	Expires   time.Time // when the server closes its connection; zero: never
}

// inboxes are the subjects a client may subscribe to besides its grants: the replies to
// its requests, such as the stream's acknowledgements of its JetStream publishes. Every
// client shares them.
const inboxes = "_INBOX.>"

// gatewayInboxPrefix is the inbox prefix of the Bus's own connection, which no client may
// subscribe to: replays travel there.
const gatewayInboxPrefix = "_NATSSE_GW"

// clientAuthenticator is nats-server's hook for ClientAuth. The Bus's own connection
// presents a random token that exists only in this process; every other client needs a
// token that ClientAuth accepts, and gets exactly the subjects it grants.
type clientAuthenticator struct {
	check  ClientAuth
	prefix string
	own    []byte
	log    *slog.Logger
}

func newClientAuthenticator(check ClientAuth, prefix string, log *slog.Logger) *clientAuthenticator {
	secret := make([]byte, 32)
	rand.Read(secret) // never fails (crypto/rand)
	own := base64.RawURLEncoding.AppendEncode(nil, secret)
	return &clientAuthenticator{check: check, prefix: prefix, own: own, log: log}
}

// Check implements server.Authentication.
func (a *clientAuthenticator) Check(c server.ClientAuthentication) bool {
	token := c.GetOpts().Token
	if subtle.ConstantTimeCompare([]byte(token), a.own) == 1 {
		c.RegisterUser(&server.User{Username: "natsse-gateway"})
		return true
	}
	if token == "" {
		a.log.Debug("NATS client refused: no token", "addr", c.RemoteAddress())
		return false
	}
	g, err := a.check(token)
	if err != nil {
		a.log.Debug("NATS client refused", "addr", c.RemoteAddress(), "err", err)
		return false
	}
	c.RegisterUser(&server.User{
		Username: g.Name,
		Permissions: &server.Permissions{
			Publish:   a.permission(g.Publish),
			Subscribe: a.permission(g.Subscribe, inboxes),
		},
		ConnectionDeadline: g.Expires,
	})
	return true
}

// permission allows the subjects of topics, and the extra subjects; nothing else.
func (a *clientAuthenticator) permission(topics []string, extra ...string) *server.SubjectPermission {
	allow := append([]string(nil), extra...)
	for _, t := range topics {
		allow = append(allow, a.prefix+"."+t)
	}
	if len(allow) == 0 {
		return &server.SubjectPermission{Deny: []string{">"}}
	}
	return &server.SubjectPermission{Allow: allow}
}
