package natsbus

import (
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestClientAuth connects NATS clients to a Bus whose clients need a token: each gets
// exactly the subjects its token grants, and the Bus's own connection is unaffected.
func TestClientAuth(t *testing.T) {
	t.Parallel()
	var expiring atomic.Int64 // set when the expiring token is checked: a second later
	b := newTestBus(t, func(o *Options) {
		o.ClientAddr = "127.0.0.1:0"
		o.ClientAuth = func(token string) (ClientGrants, error) {
			switch token {
			case "orders":
				return ClientGrants{Name: "svc", Publish: []string{"orders.*"}, Subscribe: []string{"orders.>"}}, nil
			case "expiring":
				exp := time.Now().Add(time.Second)
				expiring.Store(exp.UnixNano())
				return ClientGrants{Name: "short", Subscribe: []string{"x"}, Expires: exp}, nil
			}
			return ClientGrants{}, errors.New("unknown token")
		}
	})
	_, got := follow(t, b, 0)
	connect := func(opts ...nats.Option) (*nats.Conn, chan error, error) {
		errs := make(chan error, 10)
		opts = append(opts, nats.NoReconnect(), nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { errs <- err }))
		nc, err := nats.Connect(b.ClientURL(), opts...)
		if err == nil {
			t.Cleanup(nc.Close)
		}
		return nc, errs, err
	}
	for _, tc := range []struct {
		name string
		opts []nats.Option
	}{{"no token", nil}, {"unknown token", []nats.Option{nats.Token("guess")}}, {"user and password", []nats.Option{nats.UserInfo("a", "b")}}} {
		if _, _, err := connect(tc.opts...); err == nil || !strings.Contains(err.Error(), "Authorization") {
			t.Errorf("%s: %v, want an authorization error", tc.name, err)
		}
	}

	nc, errs, err := connect(nats.Token("orders"))
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ack, err := js.Publish(t.Context(), "sse.orders.created", []byte("granted"))
	if err != nil {
		t.Fatalf("JetStream publish inside the grant: %v", err)
	}
	if m := <-got; m.Seq != ack.Sequence || m.Topic != "orders.created" {
		t.Fatalf("feed got %+v, want seq %d", m, ack.Sequence)
	}
	violation := func(what string) {
		t.Helper()
		select {
		case err := <-errs:
			if !errors.Is(err, nats.ErrPermissionViolation) {
				t.Fatalf("%s: %v, want a permissions violation", what, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: no permissions violation", what)
		}
	}
	nc.Publish("sse.users.1", []byte("outside the grant"))
	violation("publish outside the grant")
	nc.SubscribeSync("sse.users.>")
	violation("subscribe outside the grant")
	nc.SubscribeSync("_NATSSE_GW.>")
	violation("subscribe to the gateway's inboxes")
	if _, err := js.Stream(t.Context(), b.opts.Stream); err == nil {
		t.Fatal("the JetStream API answered a client without that grant")
	}
	violation("JetStream API request")
	// A reply subject under the prefix does not make the stream store its acknowledgement
	// on another topic: the next event after this publish is the gateway's own.
	if err := nc.PublishRequest("sse.orders.created", "sse.users.43.inbox", []byte("with a reply")); err != nil {
		t.Fatal(err)
	}
	if m := <-got; m.Topic != "orders.created" || string(m.Data) != "with a reply" {
		t.Fatalf("feed got %+v, want the publish itself", m)
	}
	// The Bus itself still publishes and replays.
	publish(t, b, "users.1", "", "by the gateway")
	if m := <-got; m.Topic != "users.1" {
		t.Fatalf("feed got %+v, want the gateway's event and nothing before it", m)
	}

	short, _, err := connect(nats.Token("expiring"))
	if err != nil {
		t.Fatal(err)
	}
	closed := make(chan struct{})
	short.SetClosedHandler(func(*nats.Conn) { close(closed) })
	select {
	case <-closed:
		if time.Now().UnixNano() < expiring.Load() {
			t.Fatal("closed before the token expired")
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the connection outlived its token")
	}
}
