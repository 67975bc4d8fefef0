package natsbus

import (
	"crypto/tls"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// startServer starts the embedded server: standalone or a cluster node with JetStream, or
// a leaf node without it.
func (b *Bus) startServer() error {
	o := b.opts
	sopts := &server.Options{
		ServerName:             o.ServerName,
		JetStream:              o.embedsJetStream(),
		StoreDir:               o.StoreDir,
		NoSigs:                 true,
		DisableJetStreamBanner: true,
		SyncInterval:           o.SyncInterval,
	}
	if o.SyncInterval < 0 {
		sopts.SyncInterval = 0
		sopts.SyncAlways = true
	}
	if o.ClientAddr == "" {
		sopts.DontListen = true
	} else {
		host, port, err := splitHostPort(o.ClientAddr)
		if err != nil {
			return fmt.Errorf("natsbus: client address %q: %w", o.ClientAddr, err)
		}
		sopts.Host, sopts.Port = host, port
	}
	if o.Cluster.enabled() {
		host, port, err := splitHostPort(o.Cluster.Addr)
		if err != nil {
			return fmt.Errorf("natsbus: cluster address %q: %w", o.Cluster.Addr, err)
		}
		sopts.Cluster = server.ClusterOpts{Name: o.Cluster.Name, Host: host, Port: port,
			Username: o.Cluster.User, Password: o.Cluster.Password}
		if o.Cluster.TLSCert != "" {
			tc, err := server.GenTLSConfig(&server.TLSConfigOpts{
				CertFile: o.Cluster.TLSCert, KeyFile: o.Cluster.TLSKey, CaFile: o.Cluster.TLSCA, Verify: true,
			})
			if err != nil {
				return fmt.Errorf("natsbus: route TLS: %w", err)
			}
			// A node is server and client of its routes: verify both ways with the CA, as
			// nats-server's own configuration does.
			tc.ClientAuth, tc.RootCAs = tls.RequireAndVerifyClientCert, tc.ClientCAs
			sopts.Cluster.TLSConfig, sopts.Cluster.TLSTimeout = tc, 5
		}
		for _, r := range o.Cluster.Routes {
			u, err := url.Parse(strings.TrimSpace(r))
			if err != nil || u.Host == "" {
				return fmt.Errorf("natsbus: route %q: want nats://host:port", r)
			}
			if o.Cluster.User != "" && u.User == nil {
				u.User = url.UserPassword(o.Cluster.User, o.Cluster.Password)
			}
			sopts.Routes = append(sopts.Routes, u)
		}
	}
	for _, r := range o.LeafRemotes {
		u, err := url.Parse(strings.TrimSpace(r))
		if err != nil || u.Host == "" {
			return fmt.Errorf("natsbus: leaf remote %q: want nats://host:port", r)
		}
		sopts.LeafNode.Remotes = append(sopts.LeafNode.Remotes, &server.RemoteLeafOpts{
			URLs:        []*url.URL{u},
			Credentials: o.Credentials.File,
		})
	}
	if o.ClientAuth != nil {
		accounts, err := clientAccounts(o.SubjectPrefix)
		if err != nil {
			return err
		}
		sopts.Accounts = accounts
		// A CONNECT carries the token: allow as much as an HTTP request's headers.
		sopts.MaxControlLine = 32 << 10
		b.auth = newClientAuthenticator(o.ClientAuth, o.SubjectPrefix, b.log)
		sopts.CustomClientAuthentication = b.auth
	}
	ns, err := server.NewServer(sopts)
	if err != nil {
		return fmt.Errorf("natsbus: configure server: %w", err)
	}
	logger := &serverLogger{log: b.log}
	b.serverLog = logger
	ns.SetLoggerV2(logger, false, false, false)
	b.ns = ns
	ns.Start()
	// A failed listen is reported through the logger's Fatalf, not by Start: watch for it
	// rather than wait for the whole timeout.
	deadline := time.Now().Add(b.opts.StartTimeout)
	for !ns.ReadyForConnections(50 * time.Millisecond) {
		if msg := logger.fatalMessage(); msg != "" {
			return fmt.Errorf("%w %s: %s", ErrListen, o.ClientAddr, msg)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("natsbus: server not ready after %s", o.StartTimeout)
		}
	}
	logger.setStarted()
	if b.auth != nil {
		if err := b.auth.started(ns); err != nil {
			return err
		}
		// With accounts configured, JetStream is on only where it is asked for.
		if sopts.JetStream {
			if err := ns.GlobalAccount().EnableJetStream(nil, nil); err != nil {
				return fmt.Errorf("natsbus: JetStream for the gateway's account: %w", err)
			}
		}
	}
	return nil
}

// natsOptions are the connection options for the credentials that are set.
func (c Credentials) natsOptions() []nats.Option {
	var opts []nats.Option
	if c.File != "" {
		opts = append(opts, nats.UserCredentials(c.File))
	}
	if c.User != "" {
		opts = append(opts, nats.UserInfo(c.User, c.Password))
	}
	if c.Token != "" {
		opts = append(opts, nats.Token(c.Token))
	}
	return opts
}
