package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestClusterExternal runs two gateways on an existing NATS deployment (GATEWAY_NATS_URL),
// here a nats-server with JetStream in the test process: an event published through either
// gateway, or by a service connected to the deployment, reaches both gateways' clients with
// the same id; a client resumes across them; and they serve the same history.
func TestClusterExternal(t *testing.T) {
	ns := clusterRunNATS(t, "", 0)
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
	nc, err := nats.Connect(url, nats.Name("e2e-service"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}

	streams := []*sseStream{g1.subscribe(t, topicQuery("ext.>")), g2.subscribe(t, topicQuery("ext.>"))}
	res := g1.publish(t, "ext.a", "", "through g1")
	epoch := epochOf(t, res.ID)
	clusterSameEvent(t, streams, res.ID, "through g1")
	res = g2.publish(t, "ext.b", "", "through g2")
	clusterSameEvent(t, streams, res.ID, "through g2")
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	ack, err := js.PublishMsg(ctx, natsMsg("ext.c", "", "from a service", "ext-svc-1"))
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	clusterSameEvent(t, streams, eventID(epoch, ack.Sequence), "from a service")

	first, stream := clusterResumeAcross(t, gws, js)
	clusterResumeBurst(t, gws, stream, "hop.>", epoch, first.Seq, 20)
	clusterSameHistory(t, gws, js, epoch)
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
	leafPort := clusterFreePorts(t, 1)[0]
	ns := clusterRunNATS(t, "hub", leafPort)
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
	hub, err := nats.Connect(ns.ClientURL(), nats.Name("e2e-hub-client"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(hub.Close)
	hubJS, err := jetstream.New(hub)
	if err != nil {
		t.Fatal(err)
	}

	streams := []*sseStream{g1.subscribe(t, topicQuery("leaf.>")), g2.subscribe(t, topicQuery("leaf.>"))}
	res := g1.publish(t, "leaf.a", "", "over HTTP through g1")
	epoch := epochOf(t, res.ID)
	clusterSameEvent(t, streams, res.ID, "over HTTP through g1")
	res = g2.publish(t, "leaf.a", "", "over HTTP through g2")
	clusterSameEvent(t, streams, res.ID, "over HTTP through g2")

	nc2, _ := g2.natsConn(t)
	if err := nc2.PublishMsg(natsMsg("leaf.core", "", "core NATS through g2's listener", "")); err != nil {
		t.Fatal(err)
	}
	if err := nc2.Flush(); err != nil {
		t.Fatal(err)
	}
	id := clusterSameEvent(t, streams, "", "core NATS through g2's listener")
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
	clusterSameEvent(t, streams, eventID(epoch, ack.Sequence), "JetStream through g1's listener")

	first, stream := clusterResumeAcross(t, gws, hubJS)
	clusterResumeBurst(t, gws, stream, "hop.>", epoch, first.Seq, 20)
	clusterSameHistory(t, gws, hubJS, epoch)
}

// clusterSameHistory checks that a client asking each gateway for all history receives
// the whole stream, with the same ids and data.
func clusterSameHistory(t *testing.T, gws []*gatewayProc, js jetstream.JetStream, epoch string) {
	t.Helper()
	stream := clusterReadStream(t, js)
	for i, g := range gws {
		s := g.subscribeFrom(t, topicQuery(">"), "earliest")
		for _, m := range stream {
			ev := s.next(t)
			if ev.ID != eventID(epoch, m.seq) || ev.Data != m.data {
				t.Fatalf("gateway %d, history: got %s %q, want %s %q", i+1, ev.ID, ev.Data, eventID(epoch, m.seq), m.data)
			}
		}
		s.close()
	}
	t.Logf("each of %d gateways served the whole history of %d events", len(gws), len(stream))
}
