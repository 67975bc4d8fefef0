package e2e

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// This file holds the checks of several gateways that share one stream: embedded cluster
// nodes, or gateways on an existing NATS deployment.

// sameEvent reads the next event from every stream and checks that each is the
// same event: the same id (wantID, unless empty) and data.
func sameEvent(tb testing.TB, streams []*sseStream, wantID, wantData string) string {
	tb.Helper()
	id := wantID
	for i, s := range streams {
		ev := s.next(tb)
		if ev.Data != wantData {
			tb.Fatalf("stream %d: event %q with data %q, want data %q", i, ev.ID, ev.Data, wantData)
		}
		if id == "" {
			id = ev.ID
		}
		if ev.ID != id {
			tb.Fatalf("stream %d: event %q has id %q, want %q (as on the other gateways)", i, wantData, ev.ID, id)
		}
	}
	return id
}

// sameEventThrough publishes data on topic over HTTP through g and checks that every stream
// receives it with the id g answered, which it returns.
func sameEventThrough(tb testing.TB, g *gatewayProc, streams []*sseStream, topic, data string) string {
	tb.Helper()
	return sameEvent(tb, streams, g.publish(tb, topic, "", data).ID, data)
}

// newTestReader prepares a client of filter that the test moves from gateway to gateway
// itself (resumer.node) and reads with resumer.read, starting after the id start. When a
// stream ends early it resumes on the same gateway after the reconnection delay the
// gateways advise, 50 times at most; it fails the test when a gateway does not answer or
// sends no event within eventTimeout.
func newTestReader(bases []string, filter, epoch, start string) *resumer {
	r := newResumer(bases, 0, []string{filter}, epoch, start)
	r.pause = 100 * time.Millisecond // GATEWAY_RETRY in clusterSettings
	r.idle = eventTimeout
	r.maxCuts = 50
	r.mustReach = true
	r.detail = true
	return r
}

// checkPrefix compares the events r received with the stream's events of its filters after
// seq after, up to the last one received.
func (r *resumer) checkPrefix(tb testing.TB, stream []storedMsg, after uint64, what string) {
	tb.Helper()
	want := expectedSeqs(stream, r.filters, after)
	if d := seqDiff(r.seqs, want[:min(len(want), len(r.seqs))]); d != "" {
		tb.Fatalf("%s: %s", what, d)
	}
	if d := r.dataDiff(stream); d != "" {
		tb.Fatalf("%s: %s", what, d)
	}
}

// resumeAcross moves one client from gateway to gateway while publishers keep
// publishing through all of them: each time, it leaves, lets events accumulate, and resumes
// on the next gateway with its last id. The events it received must be exactly the
// stream's events of its filter after its first id. It returns that first event and the
// stream.
func resumeAcross(t *testing.T, gws []*gatewayProc, js jetstream.JetStream) (publishResult, []storedMsg) {
	t.Helper()
	const filter = "hop.>"
	first := gws[0].publish(t, "hop.a", "", "start")
	bases := make([]string, len(gws))
	for i, g := range gws {
		bases[i] = g.base
	}
	r := newTestReader(bases, filter, epochOf(t, first.ID), first.ID)
	load := startLoad(t, bases, 2, "", []string{"hop.a", "hop.b", "other.c"}, 5*time.Millisecond)
	hops := 2 * len(gws)
	for hop := range hops {
		n := len(r.seqs)
		r.node = hop % len(gws)
		r.read(t, func() bool { return len(r.seqs) >= n+30 })
		// Leave a backlog for the next gateway to catch up from.
		load.waitAcks(t, 30*time.Second, 40, time.Now(), "while the client is away")
	}
	load.halt()
	stream := readStreamNamed(t, js, streamName)
	checkStored(t, stream, load.acks.all())
	target := lastMatching(stream, []string{filter})
	r.node = hops % len(gws)
	r.read(t, func() bool { return r.lastSeq() >= target })
	r.checkPrefix(t, stream, first.Seq, fmt.Sprintf("one client resuming across %d gateways", len(gws)))
	t.Logf("one client resumed %d times across %d gateways while %d events were published: received %d, in order, none missing or repeated; %d streams ended early and were resumed on the same gateway",
		hops, len(gws), load.acks.count(), len(r.seqs), r.cuts)
	return first, stream
}

// resumeBurst resumes n times from the id of the stored event after, on each of
// gws in turn, and checks that every stream delivers the next (up to) 50 events of filter
// without ending first. Gateways that keep few recent events serve these resumes from the
// stream.
func resumeBurst(t *testing.T, gws []*gatewayProc, stream []storedMsg, filter, epoch string, after uint64, n int) {
	t.Helper()
	want := expectedSeqs(stream, []string{filter}, after)
	want = want[:min(len(want), 50)]
	from := formatID(epoch, after)
	cut := 0
	for i := range n {
		s := gws[i%len(gws)].subscribeFrom(t, topicQuery(filter), from)
		for j, seq := range want {
			ev, err := s.recv(eventTimeout)
			if errors.Is(err, errTimeout) {
				t.Fatalf("resume %d from %s on %s: no event within %s after %d of %d events",
					i, from, gws[i%len(gws)].base, eventTimeout, j, len(want))
			}
			if err != nil {
				if cut++; cut <= 3 {
					t.Errorf("resume %d from %s on %s: the stream ended after %d of %d events: %v",
						i, from, gws[i%len(gws)].base, j, len(want), err)
				}
				break
			}
			if ev.ID != formatID(epoch, seq) {
				t.Fatalf("resume %d from %s on %s: event %d is %s, want %s", i, from, gws[i%len(gws)].base, j, ev.ID, formatID(epoch, seq))
			}
		}
		s.close()
	}
	if cut > 0 {
		t.Errorf("%d of %d resumes from %s ended before delivering the %d events after it", cut, n, from, len(want))
	} else {
		t.Logf("%d resumes from %s across %d gateways each delivered the %d events after it", n, from, len(gws), len(want))
	}
}

// sameHistory checks that a client asking each gateway for all history receives
// the whole stream, with the same ids and data.
func sameHistory(t *testing.T, gws []*gatewayProc, js jetstream.JetStream, epoch string) {
	t.Helper()
	stream := readStreamNamed(t, js, streamName)
	for i, g := range gws {
		s := g.subscribeFrom(t, topicQuery(">"), "earliest")
		for _, m := range stream {
			ev := s.next(t)
			if ev.ID != formatID(epoch, m.seq) || ev.Data != m.data {
				t.Fatalf("gateway %d, history: got %s %q, want %s %q", i+1, ev.ID, ev.Data, formatID(epoch, m.seq), m.data)
			}
		}
		s.close()
	}
	t.Logf("each of %d gateways served the whole history of %d events", len(gws), len(stream))
}
