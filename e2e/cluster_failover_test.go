package e2e

import (
	"strings"
	"testing"
	"time"
)

// clusterTopics are the topics the publishers of the failover and rolling restart tests
// publish on, and clusterFilterSets the subscriptions of their clients: exact topics,
// wildcards, several topics and overlapping filters.
var (
	clusterTopics     = []string{"fo.a", "fo.b", "fo.c"}
	clusterFilterSets = [][]string{
		{"fo.>"}, {"fo.a"}, {"fo.b", "fo.c"}, {"fo.*"}, {"fo.a", "fo.*"}, {"fo.c"}, {"*.b"}, {"fo.>"}, {"fo.a", "fo.b"},
	}
)

// clusterTestFailover: with publishers (HTTP round-robin over the nodes with
// Idempotency-Keys, and JetStream with Nats-Msg-Ids) and subscribers spread over the
// nodes, the stream leader's node is killed with SIGKILL. Its clients resume on the
// others and the publishers retry through them; the node is restarted on its data dir,
// catches up and serves what was published while it was down. Every acknowledged event
// is stored once, and every client receives exactly the stream's events of its topics.
func clusterTestFailover(t *testing.T, starts *clusterStarts) {
	nodes := clusterNewNodes(t, 3, starts)
	clusterStart(t, nodes)
	js := connectJS(t, clusterURLs(nodes))
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
	load := startLoad(t, bases, 2, victim.natsURL+","+clusterURLs(others), clusterTopics, 8*time.Millisecond)
	cc := clusterRunClients(t, bases, clusterFilterSets, epoch, start.ID)
	subs := cc.clients
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
	caught := newTestReader([]string{victim.base}, "fo.>", epoch, formatID(epoch, killSeq))
	caught.read(t, func() bool { return caught.lastSeq() >= mark })
	load.waitAcks(t, time.Minute, 100, back, "after the restart")
	load.halt()
	stopped := time.Now()

	stream := readStreamNamed(t, js, streamName)
	acks := load.acks.all()
	checkStored(t, stream, acks)
	clusterCheckClients(t, cc, stream)
	caught.checkPrefix(t, stream, killSeq, "client of the restarted "+victim.name)

	pub, pubAt := longestGap(load.acks.times(""), killedAt, recovered)
	pubHTTP, _ := longestGap(load.acks.times("http"), killedAt, recovered)
	pubJS, _ := longestGap(load.acks.times("js"), killedAt, recovered)
	del, who, delAt := cc.deliveryStall(killedAt, recovered)
	rejoinPub, _ := longestGap(load.acks.times(""), recovered, back)
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
	js := connectJS(t, clusterURLs(nodes))
	start := nodes[0].proc.publish(t, "fo.a", "", "start")
	epoch := epochOf(t, start.ID)
	bases := clusterBases(nodes)
	load := startLoad(t, bases, 2, clusterURLs(nodes), clusterTopics, 8*time.Millisecond)
	cc := clusterRunClients(t, bases, clusterFilterSets[:6], epoch, start.ID)
	subs := cc.clients
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
	stream := readStreamNamed(t, js, streamName)
	acks := load.acks.all()
	checkStored(t, stream, acks)
	clusterCheckClients(t, cc, stream)
	for _, r := range restarts {
		pub, _ := longestGap(load.acks.times(""), r.from, r.to)
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

// clusterRunClients starts a client of each of filterSets, resuming after the id from,
// spread over the gateways at bases: each moves to the next gateway when its stream ends.
func clusterRunClients(tb testing.TB, bases []string, filterSets [][]string, epoch, from string) *resumers {
	tb.Helper()
	clients := make([]*resumer, len(filterSets))
	for i, f := range filterSets {
		clients[i] = newResumer(bases, i%len(bases), f, epoch, from)
		clients[i].move = true
		clients[i].detail = true
	}
	return runResumers(tb, clients)
}

// clusterCheckClients lets every client catch up with the end of stream, then checks that
// each received exactly the stream's events of its topics after its start, in order, each
// once, with the stream's data.
func clusterCheckClients(t *testing.T, rs *resumers, stream []storedMsg) {
	t.Helper()
	startSeq := make([]uint64, len(rs.clients))
	for i, c := range rs.clients {
		startSeq[i] = c.startSeq(t)
	}
	if !rs.catchUp(stream, time.Minute) {
		for i, c := range rs.clients {
			if !c.caughtUp(rs.finish) {
				t.Errorf("subscriber %d %v did not catch up within a minute: at seq %d of %d, on %s",
					i, c.filters, c.lastSeq(), c.target, c.bases[c.node])
			}
		}
	}
	for i, c := range rs.clients {
		if c.err != nil {
			t.Errorf("subscriber %d %v: %v", i, c.filters, c.err)
			continue
		}
		if d := seqDiff(c.seqs, expectedSeqs(stream, c.filters, startSeq[i])); d != "" {
			t.Errorf("subscriber %d %v: %s", i, c.filters, d)
			continue
		}
		if d := c.dataDiff(stream); d != "" {
			t.Errorf("subscriber %d: %s", i, d)
		}
	}
}
