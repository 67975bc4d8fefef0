package natsbus

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nuid"
)

// Options configure a Bus. Start from DefaultOptions: New uses every field as it is given
// (a zero limit means no limit) and refuses a value it cannot use. Fields marked
// "derived" are filled in by New when left empty.
type Options struct {
	// StoreDir holds JetStream's files. It is locked exclusively while the Bus runs.
	// Required when the Bus embeds JetStream.
	StoreDir string
	// ClientAddr is the embedded server's client listener for NATS clients, "host:port";
	// port 0 picks a free port. Empty: no listener, in-process clients only (a cluster node
	// derives one on 127.0.0.1).
	ClientAddr string
	// ServerName names the embedded server. Derived: "natsse", or a unique name for a
	// leaf node.
	ServerName string
	// SubjectPrefix is the first token of every subject the stream captures.
	SubjectPrefix string
	// Stream is the JetStream stream's name.
	Stream string
	// MaxAge, MaxBytes and MaxMsgs bound the stream's history; zero means unlimited.
	MaxAge   time.Duration
	MaxBytes int64
	MaxMsgs  int64
	// DuplicateWindow is how long a Nats-Msg-Id is remembered; at most MaxAge (New
	// shortens it to MaxAge when it is longer).
	DuplicateWindow time.Duration
	// SyncInterval is how often the store is fsynced; negative fsyncs every write.
	SyncInterval time.Duration
	// MaxReplays bounds the replays from the store running at once.
	MaxReplays int
	// StartTimeout bounds the embedded server's start and the wait for the stream. Derived:
	// 30s standalone, 5m when other servers take part (they may start later).
	StartTimeout time.Duration
	// Logger receives the Bus's and the server's logs. Nil discards them.
	Logger *slog.Logger

	// Cluster joins the embedded server to the other gateways' servers: NATS routes, and
	// JetStream clustering. Zero: a standalone server.
	Cluster ClusterOptions
	// Replicas is the stream's replica count: 1, or 3 in a three-node cluster.
	Replicas int
	// URLs, when set, connects to an existing NATS deployment with JetStream instead of
	// embedding a server; StoreDir, ClientAddr and Cluster are then unused.
	URLs []string
	// LeafRemotes, when set, embeds a server without JetStream that joins these URLs as a
	// leaf node: local NATS clients still connect to ClientAddr, and the stream lives in
	// the remote deployment's JetStream. StoreDir is unused.
	LeafRemotes []string
	// Credentials authenticate to URLs and LeafRemotes.
	Credentials Credentials
	// ClientAuth, when set, makes the embedded server's NATS clients present a token that
	// it accepts, and limits each to the subjects it grants, in an account of their own
	// (see clientAccounts). Nil: clients connect freely, with every right. Unused with URLs
	// (the deployment authenticates its clients).
	ClientAuth ClientAuth
	// JetStreamDomain names the JetStream domain that holds the stream. A leaf node needs
	// it: the deployment it joins must have a domain, as NATS does not forward the default
	// JetStream API over leaf connections. Empty: the default domain.
	JetStreamDomain string
}

// DefaultOptions returns the options of a standalone gateway: a day or a GiB of history,
// whichever is reached first, one replica, and an fsync every two minutes. StoreDir is
// left for the caller to set.
func DefaultOptions() Options {
	return Options{
		SubjectPrefix:   "sse",
		Stream:          "NATSSE",
		MaxAge:          24 * time.Hour,
		MaxBytes:        1 << 30,
		DuplicateWindow: 2 * time.Minute,
		SyncInterval:    2 * time.Minute,
		MaxReplays:      16,
		Replicas:        1,
	}
}

// ClusterOptions configure an embedded cluster node.
type ClusterOptions struct {
	Name   string   // the cluster's name, the same on every node
	Addr   string   // the route listener, "host:port"
	Routes []string // nats://host:port of every node (listing this one too is fine)
	// User and Password are the credentials every node presents on its routes and requires
	// of the others. Required with ClientAuth: a node that joins sees every message.
	User     string
	Password string
	// TLSCert, TLSKey and TLSCA, when set, make the routes use TLS both ways: each node
	// presents its certificate, and accepts only nodes whose certificate the CA signed.
	TLSCert, TLSKey, TLSCA string
}

func (c ClusterOptions) enabled() bool { return c.Name != "" || c.Addr != "" || len(c.Routes) > 0 }

// Credentials authenticate to a NATS deployment. Set at most one way.
type Credentials struct {
	File     string // a .creds file (JWT and NKey seed)
	User     string
	Password string
	Token    string
}

// check says what is wrong with the credentials, "" if nothing: they are set one way, and
// only for a deployment to connect to (urls) or join (leaf, with a .creds file).
func (c Credentials) check(urls, leaf bool) string {
	ways := 0
	for _, set := range []bool{c.File != "", c.User != "" || c.Password != "", c.Token != ""} {
		if set {
			ways++
		}
	}
	switch {
	case ways == 0:
		return ""
	case ways > 1:
		return "set one way: a .creds file, a user and password, or a token"
	case (c.User == "") != (c.Password == ""):
		return "set both the user and the password"
	case leaf && c.File == "":
		return "a leaf node authenticates with a .creds file only"
	case !urls && !leaf:
		return "only to connect to an existing deployment, or to join one as a leaf node"
	}
	return ""
}

// An OptionError reports an Options field whose value cannot be used. The gateway package
// reports its own options with it too.
type OptionError struct {
	Package string // the package whose Options hold the field
	Option  string // the field's name, e.g. "MaxAge" or "Cluster"
	Reason  string // what is wrong with its value
}

func (e *OptionError) Error() string { return e.Package + ": " + e.Option + ": " + e.Reason }

// Validate reports every field whose value cannot be used, each as an *OptionError, joined
// with errors.Join. New calls it.
func (o Options) Validate() error {
	var errs []error
	bad := func(option, format string, args ...any) {
		errs = append(errs, &OptionError{Package: "natsbus", Option: option, Reason: fmt.Sprintf(format, args...)})
	}
	switch {
	case len(o.URLs) > 0 && (o.Cluster.enabled() || len(o.LeafRemotes) > 0):
		bad("URLs", "an existing deployment excludes an embedded cluster and a leaf node")
	case len(o.LeafRemotes) > 0 && o.Cluster.enabled():
		bad("LeafRemotes", "a leaf node excludes an embedded cluster")
	case len(o.LeafRemotes) > 0 && o.JetStreamDomain == "":
		bad("JetStreamDomain", "required for a leaf node: the JetStream domain of the deployment it joins")
	case o.Cluster.enabled() && (o.Cluster.Name == "" || o.Cluster.Addr == "" || len(o.Cluster.Routes) == 0):
		bad("Cluster", "a cluster node needs a cluster name, a route address and the routes")
	case o.Cluster.enabled() && o.ServerName == "":
		bad("ServerName", "required for a cluster node: a unique, stable name per node")
	case (o.Cluster.TLSCert == "") != (o.Cluster.TLSKey == "") || (o.Cluster.TLSCert == "") != (o.Cluster.TLSCA == ""):
		bad("Cluster.TLSCert", "set the routes' certificate, key and CA together, or none")
	case (o.Cluster.User == "") != (o.Cluster.Password == ""):
		bad("Cluster.User", "set both the routes' user and password, or neither")
	case o.Cluster.enabled() && o.ClientAuth != nil && o.Cluster.User == "":
		bad("Cluster.User", "required with client auth: without route credentials, anyone who reaches the route port joins the cluster and sees every message")
	}
	if err := o.Credentials.check(len(o.URLs) > 0, len(o.LeafRemotes) > 0); err != "" {
		bad("Credentials", "%s", err)
	}
	if o.embedsJetStream() && o.StoreDir == "" {
		bad("StoreDir", "empty")
	}
	if err := ValidateTopic(o.SubjectPrefix); err != nil {
		bad("SubjectPrefix", "%s", strings.TrimPrefix(err.Error(), "natsbus: "))
	}
	if o.Stream == "" || strings.ContainsAny(o.Stream, " \t\r\n.*>") {
		bad("Stream", "%q: want a name without white space, '.', '*' or '>'", o.Stream)
	}
	if o.MaxAge < 0 {
		bad("MaxAge", "%s: negative", o.MaxAge)
	}
	if o.MaxBytes < 0 {
		bad("MaxBytes", "%d: negative", o.MaxBytes)
	}
	if o.MaxMsgs < 0 {
		bad("MaxMsgs", "%d: negative", o.MaxMsgs)
	}
	if o.DuplicateWindow <= 0 {
		bad("DuplicateWindow", "%s: must be positive", o.DuplicateWindow)
	}
	if o.SyncInterval == 0 {
		bad("SyncInterval", "zero: want a positive interval, or negative to fsync every write")
	}
	if o.MaxReplays < 1 {
		bad("MaxReplays", "%d: at least 1", o.MaxReplays)
	}
	if o.StartTimeout < 0 {
		bad("StartTimeout", "%s: negative", o.StartTimeout)
	}
	if o.Replicas < 1 || o.Replicas > 5 {
		bad("Replicas", "%d: from 1 to 5", o.Replicas)
	}
	return errors.Join(errs...)
}

// embedsJetStream reports whether the Bus runs JetStream in its own server.
func (o *Options) embedsJetStream() bool { return len(o.URLs) == 0 && len(o.LeafRemotes) == 0 }

// derive fills the derived fields left empty.
func (o *Options) derive() {
	if o.Cluster.enabled() && o.ClientAddr == "" {
		// A clustered server without a client listener never starts routing and hangs on
		// shutdown: give it one that only this host can reach.
		o.ClientAddr = "127.0.0.1:0"
	}
	if o.ServerName == "" {
		o.ServerName = "natsse"
		if len(o.LeafRemotes) > 0 {
			// The deployment refuses a second leaf connection from a server of the same
			// name; a leaf keeps no state, so any unique name will do.
			o.ServerName = "natsse-" + nuid.Next()
		}
	}
	if o.MaxAge > 0 && o.DuplicateWindow > o.MaxAge {
		o.DuplicateWindow = o.MaxAge
	}
	if o.StartTimeout == 0 {
		o.StartTimeout = 30 * time.Second
		if o.Cluster.enabled() || len(o.URLs) > 0 || len(o.LeafRemotes) > 0 {
			o.StartTimeout = 5 * time.Minute // the other nodes may start later
		}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}
