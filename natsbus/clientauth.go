package natsbus

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"log/slog"
	"sync/atomic"
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
	check   ClientAuth
	prefix  string
	clients atomic.Pointer[server.Account] // the server's own instance, set once it runs
	own     []byte
	log     *slog.Logger
	refused atomic.Uint64 // clients refused
}

func newClientAuthenticator(check ClientAuth, prefix string, log *slog.Logger) *clientAuthenticator {
	secret := make([]byte, 32)
	rand.Read(secret) // never fails (crypto/rand)
	own := base64.RawURLEncoding.AppendEncode(nil, secret)
	return &clientAuthenticator{check: check, prefix: prefix, own: own, log: log}
}

// clientsAccount is the NATS account of token clients.
const clientsAccount = "NATSSE_CLIENTS"

// clientAccounts are the accounts of a server whose clients present tokens. The stream and
// the gateway stay in the global account; token clients live in their own, which imports
// the prefix's subjects from it: as a stream, to subscribe, and as a service, to publish.
// Through the service import, the reply subject of a client's publish is replaced by one
// of the server's, so that the stream's acknowledgement can never land on a stream
// subject; and the client account sees no JetStream API and no inbox of the gateway.
func clientAccounts(prefix string) ([]*server.Account, error) {
	global := server.NewAccount(server.DEFAULT_GLOBAL_ACCOUNT)
	clients := server.NewAccount(clientsAccount)
	subjects := prefix + ".>"
	for _, err := range []error{
		global.AddStreamExport(subjects, []*server.Account{clients}),
		global.AddServiceExport(subjects, []*server.Account{clients}),
		clients.AddStreamImport(global, subjects, ""),
		clients.AddServiceImport(global, subjects, subjects),
	} {
		if err != nil {
			return nil, fmt.Errorf("natsbus: client account: %w", err)
		}
	}
	return []*server.Account{global, clients}, nil
}

// started takes the clients' account from the running server.
func (a *clientAuthenticator) started(ns *server.Server) error {
	acc, err := ns.LookupAccount(clientsAccount)
	if err != nil {
		return fmt.Errorf("natsbus: client account: %w", err)
	}
	a.clients.Store(acc)
	return nil
}

// Check implements server.Authentication.
func (a *clientAuthenticator) Check(c server.ClientAuthentication) bool {
	token := c.GetOpts().Token
	if subtle.ConstantTimeCompare([]byte(token), a.own) == 1 {
		c.RegisterUser(&server.User{Username: "natsse-gateway"})
		return true
	}
	if token == "" {
		a.refused.Add(1)
		a.log.Debug("NATS client refused: no token", "addr", c.RemoteAddress())
		return false
	}
	clients := a.clients.Load()
	if clients == nil {
		return false // the server is still starting
	}
	g, err := a.check(token)
	if err != nil {
		a.refused.Add(1)
		a.log.Debug("NATS client refused", "addr", c.RemoteAddress(), "err", err)
		return false
	}
	c.RegisterUser(&server.User{
		Account:  clients,
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

// ClientAuthFailures returns how many NATS clients the embedded server refused for their
// token (none without Options.ClientAuth).
func (b *Bus) ClientAuthFailures() uint64 {
	if b.auth == nil {
		return 0
	}
	return b.auth.refused.Load()
}
