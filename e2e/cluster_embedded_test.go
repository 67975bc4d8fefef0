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

// clusterTopics are the topics the publishers of the failover and rolling restart tests
// publish on, and clusterFilterSets the subscriptions of their clients: exact topics,
// wildcards, several topics and overlapping filters.
var (
	clusterTopics     = []string{"fo.a", "fo.b", "fo.c"}
	clusterFilterSets = [][]string{
		{"fo.>"}, {"fo.a"}, {"fo.b", "fo.c"}, {"fo.*"}, {"fo.a", "fo.*"}, {"fo.c"}, {"*.b"}, {"fo.>"}, {"fo.a", "fo.b"},
	}
)

// clusterBases returns the nodes' base URLs.
func clusterBases(nodes []*clusterNode) []string {
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = n.base
	}
	return out
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
	clusterCheckUnavailable(t, "n1 alone: POST /publish", resp, body)
	resp, body, err = n1.request(ctx, http.MethodGet, "/events?topic=one.x", nil, nil)
	if err != nil {
		t.Fatalf("n1 alone: GET /events: %v", err)
	}
	clusterCheckRetryOnly(t, "n1 alone: GET /events", resp, body)
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
		clusterSameEvent(t, streams, res.ID, data)
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
		id := clusterSameEvent(t, streams, "", data)
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
		clusterSameEvent(t, streams, eventID(epoch, ack.Sequence), data)
	}
}

// clusterCheckUnavailable checks a 503 answer: JSON error with code "unavailable" and a
// Retry-After.
func clusterCheckUnavailable(tb testing.TB, what string, resp *http.Response, body []byte) {
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

// clusterCheckRetryOnly checks an answer to GET /events that tells the client to come
// back: 200, an event stream, a retry hint and no event.
func clusterCheckRetryOnly(tb testing.TB, what string, resp *http.Response, body []byte) {
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
	first, stream := clusterResumeAcross(t, gws, clusterJS(t, clusterURLs(nodes)))
	// n2 and n3 serve these resumes from the stream (the backlog is longer than n3's ring).
	clusterResumeBurst(t, gws[1:], stream, "hop.>", epochOf(t, first.ID), first.Seq, 300)
}

// clusterTestFailover: with publishers (HTTP round-robin over the nodes with
// Idempotency-Keys, and JetStream with Nats-Msg-Ids) and subscribers spread over the
// nodes, the stream leader's node is killed with SIGKILL. Its clients resume on the
// others and the publishers retry through them; the node is restarted on its data dir,
// catches up and serves what was published while it was down. Every acknowledged event
// is stored once, and every client receives exactly the stream's events of its topics.
func clusterTestFailover(t *testing.T, starts *clusterStarts) {
	nodes := clusterNewNodes(t, 3, starts)
	clusterStart(t, nodes)
	js := clusterJS(t, clusterURLs(nodes))
	victim := clusterLeader(t, js, nodes)
	var others []*clusterNode
	for _, n := range nodes {
		if n != victim {
			others = append(others, n)
		}
	}
	start := nodes[0].proc.publish(t, "fo.a", "", "start")
	epoch := epochOf(t, start.ID)
	bases := clusterBases(nodes)

	// The JetStream publisher is connected to the victim's server first.
	load := clusterStartLoad(t, bases, 2, victim.natsURL+","+clusterURLs(others), clusterTopics, 8*time.Millisecond)
	subs := make([]*clusterSubscriber, len(clusterFilterSets))
	for i, f := range clusterFilterSets {
		subs[i] = clusterNewSubscriber(bases, i%len(nodes), f, epoch, start.ID)
	}
	cc := clusterRunSubscribers(t, subs)
	began := time.Now()
	load.waitAcks(t, time.Minute, 150, began, "before the kill")
	cc.waitEach(t, time.Minute, 5, make([]int64, len(subs)), "every subscriber receiving before the kill")

	role := "a follower now"
	if clusterLeader(t, js, nodes) == victim {
		role = "the stream leader"
	}
	killSeq := load.acks.maxSeq()
	killedAt := time.Now()
	victim.proc.kill(t)
	t.Logf("killed %s (%s) after %d acknowledged publishes (up to seq %d)", victim.name, role, load.acks.count(), killSeq)
	counts := cc.counts()
	load.waitAcks(t, time.Minute, 150, killedAt, "through the survivors")
	// Every client, moved or not, receives again while the node is down.
	if behind := cc.tryWaitEach(clusterRecoveryTimeout, 10, counts); len(behind) > 0 {
		t.Errorf("%s after the kill of %s, with %d publishes acknowledged through the survivors since, clients still wait for events:\n%s",
			time.Since(killedAt).Round(time.Millisecond), victim.name, load.acks.since(killedAt), strings.Join(behind, "\n"))
	}
	recovered := time.Now()

	victim.start(t)
	clusterWaitReady(t, time.Minute, nodes...)
	clusterWaitHealthy(t, js, len(nodes), time.Minute)
	back := time.Now()
	t.Logf("%s restarted: ready and caught up %s after the restart began", victim.name, back.Sub(recovered).Round(time.Millisecond))

	// A client of the restarted node resumes from before the kill: it receives what was
	// published while the node was down.
	mark := load.acks.maxSeq()
	caught := &clusterReader{t: t, epoch: epoch, filter: "fo.>", last: eventID(epoch, killSeq)}
	caught.readFrom(victim.proc, func() bool { return caught.lastSeq() >= mark })
	load.waitAcks(t, time.Minute, 100, back, "after the restart")
	load.halt()
	stopped := time.Now()

	stream := clusterReadStream(t, js)
	acks := load.acks.all()
	clusterCheckStream(t, stream, acks)
	cc.finishAndCheck(t, stream)
	caught.check(stream, killSeq, "client of the restarted "+victim.name)

	pub, pubAt := clusterLongestGap(load.acks.times(""), killedAt, recovered)
	pubHTTP, _ := clusterLongestGap(load.acks.times("http"), killedAt, recovered)
	pubJS, _ := clusterLongestGap(load.acks.times("js"), killedAt, recovered)
	del, who, delAt := cc.deliveryStall(killedAt, recovered)
	rejoinPub, _ := clusterLongestGap(load.acks.times(""), recovered, back)
	rejoinDel, _, _ := cc.deliveryStall(recovered, back)
	hops, sessions := 0, 0
	for _, s := range subs {
		hops += s.hops
		sessions += s.sessions
	}
	t.Logf("failover after kill -9 of %s: publishing stalled %s (from +%s; HTTP %s, JetStream %s); delivery stalled %s at most (subscriber %d, from +%s)",
		victim.name, pub.Round(time.Millisecond), pubAt.Sub(killedAt).Round(time.Millisecond),
		pubHTTP.Round(time.Millisecond), pubJS.Round(time.Millisecond),
		del.Round(time.Millisecond), who, delAt.Sub(killedAt).Round(time.Millisecond))
	t.Logf("rejoin of %s: publishing stalled %s, delivery %s at most", victim.name, rejoinPub.Round(time.Millisecond), rejoinDel.Round(time.Millisecond))
	t.Logf("%d events stored, %d acknowledged publishes (%d failed attempts retried) in %s; %d subscribers opened %d streams, moved %d times; a client of the restarted node caught up %d events from before the kill (%d streams ended early and were resumed)",
		len(stream), len(acks), load.failures.Load(), stopped.Sub(began).Round(time.Millisecond), len(subs), sessions, hops, len(caught.seqs), caught.cuts)
	if pub > 30*time.Second || del > 30*time.Second {
		t.Errorf("failover stalled publishing %s and delivery %s: over 30s", pub, del)
	}
}

// clusterTestRollingRestart: each node in turn is stopped with SIGTERM and started again
// on its data dir, the next one only once it is back and the stream is healthy, while
// publishers and clients keep going (clients resume elsewhere when their node goes).
// Nothing is lost or repeated.
func clusterTestRollingRestart(t *testing.T, starts *clusterStarts) {
	nodes := clusterNewNodes(t, 3, starts)
	clusterStart(t, nodes)
	js := clusterJS(t, clusterURLs(nodes))
	start := nodes[0].proc.publish(t, "fo.a", "", "start")
	epoch := epochOf(t, start.ID)
	bases := clusterBases(nodes)
	load := clusterStartLoad(t, bases, 2, clusterURLs(nodes), clusterTopics, 8*time.Millisecond)
	subs := make([]*clusterSubscriber, 6)
	for i := range subs {
		subs[i] = clusterNewSubscriber(bases, i%len(nodes), clusterFilterSets[i], epoch, start.ID)
	}
	cc := clusterRunSubscribers(t, subs)
	began := time.Now()
	load.waitAcks(t, time.Minute, 100, began, "before the first restart")
	cc.waitEach(t, time.Minute, 5, make([]int64, len(subs)), "every subscriber receiving")

	type restart struct {
		node     *clusterNode
		leader   bool
		took     time.Duration // from SIGTERM to exit
		from, to time.Time     // SIGTERM; back, and the stream healthy
	}
	var restarts []restart
	for _, n := range nodes {
		leader := clusterLeader(t, js, nodes)
		from := time.Now()
		code, took := n.proc.stop(t)
		if code != 0 {
			t.Fatalf("%s exited with %d on SIGTERM", n.name, code)
		}
		n.start(t)
		clusterWaitReady(t, time.Minute, nodes...)
		clusterWaitHealthy(t, js, len(nodes), time.Minute)
		to := time.Now()
		restarts = append(restarts, restart{node: n, leader: n == leader, took: took, from: from, to: to})
		counts := cc.counts()
		load.waitAcks(t, time.Minute, 150, to, "after "+n.name+" is back")
		cc.waitEach(t, time.Minute, 3, counts, "every subscriber receiving after "+n.name+" is back")
	}
	load.halt()
	stream := clusterReadStream(t, js)
	acks := load.acks.all()
	clusterCheckStream(t, stream, acks)
	cc.finishAndCheck(t, stream)
	for _, r := range restarts {
		pub, _ := clusterLongestGap(load.acks.times(""), r.from, r.to)
		del, who, _ := cc.deliveryStall(r.from, r.to)
		role := "a follower"
		if r.leader {
			role = "the stream leader"
		}
		t.Logf("%s (%s): stopped in %s, back and the stream healthy %s after SIGTERM; publishing stalled %s, delivery %s at most (subscriber %d)",
			r.node.name, role, r.took.Round(time.Millisecond), r.to.Sub(r.from).Round(time.Millisecond),
			pub.Round(time.Millisecond), del.Round(time.Millisecond), who)
		if pub > 30*time.Second || del > 30*time.Second {
			t.Errorf("restart of %s stalled publishing %s and delivery %s: over 30s", r.node.name, pub, del)
		}
	}
	hops := 0
	for _, s := range subs {
		hops += s.hops
	}
	t.Logf("%d events stored, %d acknowledged publishes (%d failed attempts retried); %d subscribers moved %d times",
		len(stream), len(acks), load.failures.Load(), len(subs), hops)
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
	clusterCheckUnavailable(t, "POST /publish without quorum", resp, body)
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

	js := clusterJS(t, clusterURLs(nodes[:2]))
	stream := clusterReadStream(t, js)
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
