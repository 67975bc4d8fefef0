package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/natsse/natsse/sseformat"
)

// TestCluster runs three gateways as an embedded NATS cluster with a stream of three
// replicas (GATEWAY_CLUSTER_*, GATEWAY_STREAM_REPLICAS=3). Each subtest starts its own
// cluster; they run one after the other, as three nodes already keep two cores busy. A
// node that gives up starting is launched again, as a supervisor would, so that each
// subtest tests what it is about; but every node must start at its first attempt, with its
// peers starting alongside: TestCluster checks that last.
func TestCluster(t *testing.T) {
	var starts clusterStarts
	for _, tc := range []struct {
		name string
		test func(*testing.T, *clusterStarts)
	}{
		{"three_nodes", clusterTestThreeNodes},
		{"resume_elsewhere", clusterTestResumeElsewhere},
		{"failover", clusterTestFailover},
		{"rolling_restart", clusterTestRollingRestart},
		{"no_quorum", clusterTestNoQuorum},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.test(t, &starts) })
	}
	if failures := starts.all(); len(failures) > 0 {
		t.Errorf("%d node starts gave up, with every peer up or starting, and the process exited:\n%s",
			len(failures), strings.Join(failures, "\n"))
	}
}

// clusterTestThreeNodes: a node alone serves health checks but is not ready, refuses
// publishes with 503 and streams with a retry hint; once its peers are up, all three are
// ready, and an event published through any of them — over HTTP, or with a core NATS or
// JetStream publish on any node's NATS listener — reaches the subscribers of every gateway
// with the same id.
func clusterTestThreeNodes(t *testing.T, starts *clusterStarts) {
	nodes := clusterNewNodes(t, 3, starts)
	n1 := nodes[0]
	ctx := t.Context()

	n1.launch(t)
	pollUntil(t, clusterStartTimeout, "/healthz 200 on n1", func() bool {
		return n1.status(ctx, "/healthz") == http.StatusOK
	})
	if code := n1.status(ctx, "/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("n1 alone: /readyz %d, want 503", code)
	}
	resp, body, err := n1.request(ctx, http.MethodPost, "/publish/one.x", strings.NewReader("too early"), nil)
	if err != nil {
		t.Fatalf("n1 alone: POST /publish: %v", err)
	}
	checkUnavailable(t, "n1 alone: POST /publish", resp, body)
	resp, body, err = n1.request(ctx, http.MethodGet, "/events?topic=one.x", nil, nil)
	if err != nil {
		t.Fatalf("n1 alone: GET /events: %v", err)
	}
	checkRetryOnly(t, "n1 alone: GET /events", resp, body)
	n1.proc.waitLog(t, 30*time.Second, `"gateway starting…"`, func(e logEntry) bool {
		return strings.HasPrefix(e.msg(), "gateway starting")
	})
	if es := n1.proc.log.entries(func(e logEntry) bool { return e.msg() == "gateway started" }); len(es) != 0 {
		t.Fatalf("n1 alone claims to have started: %v", es)
	}

	for _, n := range nodes[1:] {
		n.launch(t)
	}
	clusterWaitStarted(t, nodes...)
	clusterWaitReady(t, time.Minute, nodes...)

	streams := make([]*sseStream, len(nodes))
	for i, n := range nodes {
		streams[i] = n.proc.subscribe(t, topicQuery("one.>"))
	}
	var epoch string
	for i, n := range nodes {
		data := "over HTTP through " + n.name
		res := n.proc.publish(t, fmt.Sprintf("one.http.%d", i), "", data)
		if epoch == "" {
			epoch = epochOf(t, res.ID)
		} else if e := epochOf(t, res.ID); e != epoch {
			t.Fatalf("%s answered id %s, of another epoch than %s", n.name, res.ID, epoch)
		}
		sameEvent(t, streams, res.ID, data)
	}
	for _, n := range nodes {
		nc, js := n.proc.natsConn(t)
		data := "core NATS through " + n.name
		if err := nc.PublishMsg(natsMsg("one.core", "", data, "")); err != nil {
			t.Fatal(err)
		}
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
		id := sameEvent(t, streams, "", data)
		if e := epochOf(t, id); e != epoch {
			t.Fatalf("core publish through %s delivered with id %s, of another epoch than %s", n.name, id, epoch)
		}
		data = "JetStream through " + n.name
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		ack, err := js.PublishMsg(pctx, natsMsg("one.js", "", data, "one-js-"+n.name))
		cancel()
		if err != nil {
			t.Fatalf("JetStream publish through %s: %v", n.name, err)
		}
		sameEvent(t, streams, formatID(epoch, ack.Sequence), data)
	}
}

// checkUnavailable checks a 503 answer: JSON error with code "unavailable" and a
// Retry-After.
func checkUnavailable(tb testing.TB, what string, resp *http.Response, body []byte) {
	tb.Helper()
	if resp.StatusCode != http.StatusServiceUnavailable {
		tb.Fatalf("%s: %s: %s, want 503", what, resp.Status, body)
	}
	if ra := resp.Header.Get("Retry-After"); ra == "" {
		tb.Errorf("%s: 503 without Retry-After", what)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		tb.Errorf("%s: Content-Type %q, want JSON", what, ct)
	}
	var e errorResult
	if err := json.Unmarshal(body, &e); err != nil || e.Error == "" || e.Code != "unavailable" {
		tb.Errorf("%s: body %q, want a JSON error with code unavailable", what, body)
	}
}

// checkRetryOnly checks an answer to GET /events that tells the client to come
// back: 200, an event stream, a retry hint, no event and no blank line.
func checkRetryOnly(tb testing.TB, what string, resp *http.Response, body []byte) {
	tb.Helper()
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("%s: %s: %s, want 200", what, resp.Status, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream; charset=utf-8" {
		tb.Errorf("%s: Content-Type %q", what, ct)
	}
	dec := sseformat.NewDecoder(strings.NewReader(string(body)))
	if ev, err := dec.Next(); err == nil {
		tb.Errorf("%s: event %+v, want none", what, ev)
	}
	if dec.Retry() <= 0 {
		tb.Errorf("%s: body %q without a retry hint", what, body)
	}
	if hasBlankLine(body) {
		tb.Errorf("%s: body %q ends a block without data: some clients dispatch it as an empty message", what, body)
	}
}

// clusterTestResumeElsewhere: a client leaves one gateway and resumes on another with
// its Last-Event-ID, again and again, while events keep being published: nothing is lost
// or repeated. Then many clients resume from one old id on every node: each stream
// delivers what follows it. Two nodes keep few or no recent events in memory, so resumes
// there read the replicated stream.
func clusterTestResumeElsewhere(t *testing.T, starts *clusterStarts) {
	nodes := clusterNewNodes(t, 3, starts)
	nodes[1].env = append(nodes[1].env, "GATEWAY_RECENT_EVENTS=0")
	nodes[2].env = append(nodes[2].env, "GATEWAY_RECENT_EVENTS=64")
	clusterStart(t, nodes)
	gws := make([]*gatewayProc, len(nodes))
	for i, n := range nodes {
		gws[i] = n.proc
	}
	first, stream := resumeAcross(t, gws, connectJS(t, clusterURLs(nodes)))
	// n2 and n3 serve these resumes from the stream (the backlog is longer than n3's ring).
	resumeBurst(t, gws[1:], stream, "hop.>", epochOf(t, first.ID), first.Seq, 300)
}

// clusterTestNoQuorum: with two of three nodes stopped, the survivor answers publishes
// with 503, a JSON error and Retry-After (within its publish timeout), is not ready, and
// answers new streams with 200 and a retry hint; once a second node is back, publishing
// works again (a retry with the same Idempotency-Key stores the event once), and streams
// deliver.
func clusterTestNoQuorum(t *testing.T, starts *clusterStarts) {
	nodes := clusterNewNodes(t, 3, starts)
	clusterStart(t, nodes)
	survivor := nodes[0]
	ctx := t.Context()
	before := survivor.proc.publish(t, "nq.a", "", "before the outage")
	for _, n := range nodes[1:] {
		if code, _ := n.proc.stop(t); code != 0 {
			t.Fatalf("%s exited with %d on SIGTERM", n.name, code)
		}
	}

	key := http.Header{"Idempotency-Key": {"nq-outage"}}
	began := time.Now()
	resp, body, err := survivor.request(ctx, http.MethodPost, "/publish/nq.a", strings.NewReader("during the outage"), key)
	took := time.Since(began)
	if err != nil {
		t.Fatalf("POST /publish without quorum: no answer after %s: %v", took, err)
	}
	checkUnavailable(t, "POST /publish without quorum", resp, body)
	t.Logf("without quorum, POST /publish answered %d after %s: %s", resp.StatusCode, took.Round(time.Millisecond), body)
	if took > 15*time.Second {
		t.Errorf("POST /publish without quorum took %s, want under 15s", took)
	}
	pollUntil(t, 30*time.Second, "/readyz 503 on the survivor", func() bool {
		return survivor.status(ctx, "/readyz") == http.StatusServiceUnavailable
	})

	// New streams, live and resuming: 200 and a retry hint at once or after a while; the
	// stream either ends there or stays open.
	type openStream struct {
		from string
		body *rawBody
	}
	var open []openStream
	for _, from := range []string{"", before.ID} {
		sctx, cancel := context.WithCancel(ctx)
		t.Cleanup(cancel)
		req, _ := http.NewRequestWithContext(sctx, http.MethodGet, survivor.base+"/events?topic=nq.a", nil)
		if from != "" {
			req.Header.Set("Last-Event-ID", from)
		}
		began := time.Now()
		resp, err := survivor.http.Do(req)
		if err != nil {
			t.Fatalf("GET /events (from %q) without quorum: %v", from, err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream; charset=utf-8" {
			t.Fatalf("GET /events (from %q) without quorum: %s, %s", from, resp.Status, resp.Header.Get("Content-Type"))
		}
		rb := readRaw(resp.Body)
		rb.waitFor(t, 15*time.Second, "a retry hint", func(b []byte) bool { return strings.Contains(string(b), "retry:") })
		t.Logf("without quorum, GET /events (from %q) answered 200 with a retry hint after %s", from, time.Since(began).Round(time.Millisecond))
		open = append(open, openStream{from: from, body: rb})
	}

	// A second node comes back: quorum again.
	nodes[1].start(t)
	clusterWaitReady(t, time.Minute, nodes[:2]...)
	var res publishResult
	pollUntil(t, time.Minute, "a publish with the outage's key to succeed", func() bool {
		pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		var err error
		res, err = survivor.proc.tryPublish(pctx, "nq.a", "", "during the outage", "nq-outage")
		return err == nil
	})
	after := survivor.proc.publish(t, "nq.a", "", "after the outage")
	t.Logf("quorum back: the retried publish is seq %d (duplicate=%v), the next seq %d", res.Seq, res.Duplicate, after.Seq)

	js := connectJS(t, clusterURLs(nodes[:2]))
	stream := readStreamNamed(t, js, streamName)
	var got []string
	for _, m := range stream {
		got = append(got, m.data)
	}
	if want := []string{"before the outage", "during the outage", "after the outage"}; !slices.Equal(got, want) {
		t.Errorf("the stream holds %q, want %q", got, want)
	}
	// Streams opened during the outage deliver now, unless they ended with their hint.
	for _, o := range open {
		o.body.mu.Lock()
		ended := o.body.err != nil
		o.body.mu.Unlock()
		if ended {
			continue
		}
		deadline := time.Now().Add(eventTimeout)
		for {
			o.body.mu.Lock()
			b, err, changed := string(o.body.buf), o.body.err, o.body.changed
			o.body.mu.Unlock()
			if strings.Contains(b, "data: after the outage") {
				break
			}
			if err != nil {
				break // it ended: the client reconnects
			}
			if time.Now().After(deadline) {
				t.Errorf("stream opened (from %q) during the outage: no event within %s after the quorum came back; got %q", o.from, eventTimeout, b)
				break
			}
			select {
			case <-changed:
			case <-time.After(time.Until(deadline)):
			}
		}
	}
	// A client resuming from before the outage receives both events, once.
	s := survivor.proc.subscribeFrom(t, topicQuery("nq.a"), before.ID)
	for _, want := range []string{"during the outage", "after the outage"} {
		if ev := s.next(t); ev.Data != want {
			t.Fatalf("resumed from %s: got %q (%s), want %q", before.ID, ev.Data, ev.ID, want)
		}
	}
}
