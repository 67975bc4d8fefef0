package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// TestClusterExternal runs two gateways on an existing NATS deployment (GATEWAY_NATS_URL),
// here a nats-server with JetStream in the test process: an event published through either
// gateway, or by a service connected to the deployment, reaches both gateways' clients with
// the same id; a client resumes across them; and they serve the same history.
func TestClusterExternal(t *testing.T) {
	ns := runNATS(t, "", 0)
	url := ns.ClientURL()
	env := append(slices.Clone(clusterSettings), "GATEWAY_NATS_URL="+url)
	g1 := startGateway(t, env...)
	g2 := startGateway(t, append(env, "GATEWAY_RECENT_EVENTS=0")...) // its resumes read the stream
	gws := []*gatewayProc{g1, g2}
	for _, g := range gws {
		if g.natsURL != "off" {
			t.Errorf("a gateway on an external deployment embeds a NATS server at %s", g.natsURL)
		}
	}
	js := connectJS(t, url) // a service connected to the deployment

	streams := []*sseStream{g1.subscribe(t, topicQuery("ext.>")), g2.subscribe(t, topicQuery("ext.>"))}
	epoch := epochOf(t, sameEventThrough(t, g1, streams, "ext.a", "through g1"))
	sameEventThrough(t, g2, streams, "ext.b", "through g2")
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	ack, err := js.PublishMsg(ctx, natsMsg("ext.c", "", "from a service", "ext-svc-1"))
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	sameEvent(t, streams, formatID(epoch, ack.Sequence), "from a service")

	first, stream := resumeAcross(t, gws, js)
	resumeBurst(t, gws, stream, "hop.>", epoch, first.Seq, 20)
	sameHistory(t, gws, js, epoch)
}

// TestClusterLeaf runs two gateways as leaf nodes of an existing NATS deployment
// (GATEWAY_LEAF_REMOTES, GATEWAY_JS_DOMAIN), here a nats-server with JetStream in the
// domain "hub" in the test process: an event published over HTTP through one gateway, or
// by a NATS client of a gateway's own listener (core NATS, or JetStream in the hub's
// domain), reaches both gateways' clients with the same id, and a client resumes across
// them. First with the settings the leaf mode documents, then with a GATEWAY_SERVER_NAME
// of its own for each gateway.
func TestClusterLeaf(t *testing.T) {
	t.Run("documented_settings", func(t *testing.T) { clusterTestLeaf(t, "", "") })
	t.Run("server_names", func(t *testing.T) { clusterTestLeaf(t, "leaf1", "leaf2") })
}

func clusterTestLeaf(t *testing.T, names ...string) {
	leafPort := freePorts(t, 1)[0]
	ns := runNATS(t, "hub", leafPort)
	env := append(slices.Clone(clusterSettings),
		fmt.Sprintf("GATEWAY_LEAF_REMOTES=nats://127.0.0.1:%d", leafPort), "GATEWAY_JS_DOMAIN=hub")
	gws := make([]*gatewayProc, len(names))
	for i, name := range names {
		genv := slices.Clone(env)
		if name != "" {
			genv = append(genv, "GATEWAY_SERVER_NAME="+name)
		}
		if i > 0 {
			genv = append(genv, "GATEWAY_RECENT_EVENTS=0") // its resumes read the stream
		}
		gws[i] = startGateway(t, genv...)
	}
	g1, g2 := gws[0], gws[1]
	// The deployment drops a leaf connection when another from a server of the same name
	// arrives: say so if that is why the test fails.
	t.Cleanup(func() {
		for i, g := range gws {
			for _, line := range g.log.lines() {
				if strings.Contains(line, "Duplicate Remote LeafNode Connection") {
					t.Errorf("gateway %d: the deployment dropped its leaf connection as a duplicate of another gateway's: %s", i+1, line)
					break
				}
			}
		}
	})
	hubJS := connectJS(t, ns.ClientURL()) // a client of the deployment itself

	streams := []*sseStream{g1.subscribe(t, topicQuery("leaf.>")), g2.subscribe(t, topicQuery("leaf.>"))}
	epoch := epochOf(t, sameEventThrough(t, g1, streams, "leaf.a", "over HTTP through g1"))
	sameEventThrough(t, g2, streams, "leaf.a", "over HTTP through g2")

	nc2, _ := g2.natsConn(t)
	if err := nc2.PublishMsg(natsMsg("leaf.core", "", "core NATS through g2's listener", "")); err != nil {
		t.Fatal(err)
	}
	if err := nc2.Flush(); err != nil {
		t.Fatal(err)
	}
	id := sameEvent(t, streams, "", "core NATS through g2's listener")
	if e := epochOf(t, id); e != epoch {
		t.Fatalf("core publish delivered with id %s, of another epoch than %s", id, epoch)
	}

	nc1, _ := g1.natsConn(t)
	js1, err := jetstream.NewWithDomain(nc1, "hub")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	ack, err := js1.PublishMsg(ctx, natsMsg("leaf.js", "", "JetStream through g1's listener", "leaf-js-1"))
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	if ack.Domain != "hub" {
		t.Errorf("JetStream ack from domain %q, want hub", ack.Domain)
	}
	sameEvent(t, streams, formatID(epoch, ack.Sequence), "JetStream through g1's listener")

	first, stream := resumeAcross(t, gws, hubJS)
	resumeBurst(t, gws, stream, "hop.>", epoch, first.Seq, 20)
	sameHistory(t, gws, hubJS, epoch)
}
