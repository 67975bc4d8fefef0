package e2e

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// The bounds an operator of a three-node cluster relies on when one node is cut off from
// the other two, while clients and load balancers still reach it: 3x what README promises
// (a node knows it is cut off after 3 s of silence from its peers; the others stay ready
// through their election; the healed node is ready within a few seconds).
const (
	isolatedUnready = 9 * time.Second  // the cut node's /readyz answers 503 within this of the cut
	isolatedPublish = 9 * time.Second  // a publish to the cut node is answered 503 within this
	majorityUnready = 6 * time.Second  // the others' /readyz is not 200 for longer than this in all
	readyAfterHeal  = 15 * time.Second // the cut node's /readyz answers 200 within this of the heal
	// Publishing through the others pauses for their election: NATS's 4-9 s, after the
	// leader's silence is noticed.
	majorityStall = 15 * time.Second
)

// The scenario of TestPartition.
const (
	partitionLength   = 13 * time.Second       // how long the node stays cut off
	partitionClients  = 30                     // resuming clients spread over the nodes
	readyProbeTimeout = 3 * time.Second        // a /readyz answer later than this counts as none
	publishTimeout    = 15 * time.Second       // of publishes to the cut node: over the gateway's own
	healResumeCount   = 6                      // resumes on the healed node right after the heal,
	healResumeEvery   = 500 * time.Millisecond // one every
	healResumeEvents  = 20                     // the events each of them reads
)

// TestPartition runs three gateways as an embedded cluster, each in a network namespace of
// its own, with publishers and ~30 resuming clients spread over them, and cuts the stream
// leader's node off from the other two for a while: packets between them are dropped
// silently, while the clients still reach all three. A load balancer must see the cut node
// unready within seconds, and publishes through it must be refused quickly with 503 and
// Retry-After rather than held; the other two elect a leader and serve on. After the heal,
// a client that resumes on the healed node with the newest id a client of the majority
// received continues exactly after it, or is told to come back later; nothing acknowledged
// is lost or stored twice, and every client receives exactly the stream's events.
func TestPartition(t *testing.T) {
	lan := newNetnsLAN(t, 3)
	var starts clusterStarts
	nodes := clusterNewNodesOn(t, lan.clusterHosts(), &starts)
	clusterStart(t, nodes)
	js := connectJS(t, clusterURLs(nodes))
	start := nodes[0].proc.publish(t, "fo.a", "", "start")
	epoch := epochOf(t, start.ID)
	bases := clusterBases(nodes)

	ready := make([]*prober, len(nodes))
	for i, n := range nodes {
		ready[i] = startProber(t, readyProbeTimeout, probeReady(n))
	}
	load := startLoad(t, bases, 2, clusterURLs(nodes), clusterTopics, 8*time.Millisecond)
	filterSets := make([][]string, partitionClients)
	for i := range filterSets {
		filterSets[i] = clusterFilterSets[i%len(clusterFilterSets)]
	}
	cc := clusterRunClients(t, bases, filterSets, epoch, start.ID)
	began := time.Now()
	load.waitAcks(t, time.Minute, 150, began, "before the cut")
	cc.waitEach(t, time.Minute, 5, make([]int64, len(cc.clients)), "every client receiving before the cut")

	victim := clusterLeader(t, js, nodes)
	vi := slices.Index(nodes, victim)
	var majority []*clusterNode
	for _, n := range nodes {
		if n != victim {
			majority = append(majority, n)
		}
	}
	// A client of the majority, resuming there whenever its stream ends: right after the
	// heal, clients resume on the healed node with the newest id it received.
	watcher := newResumer([]string{majority[0].base}, 0, []string{"fo.>"}, epoch, formatID(epoch, load.acks.maxSeq()))
	watcher.detail = true
	watching := runResumers(t, []*resumer{watcher})
	pollUntil(t, time.Minute, "an event on the majority's watcher", func() bool { return watcher.newest() != "" })

	lan.cutOff(t, vi)
	cut := time.Now() // the partition is complete
	t.Logf("cut %s (the stream leader) off from %s and %s after %d acknowledged publishes", victim.name, majority[0].name, majority[1].name, load.acks.count())
	pubs := startProber(t, publishTimeout, probePublish(victim, "fo.a", fmt.Sprintf("cut-%08x", rand.Uint32())))
	partition := time.NewTimer(partitionLength)
	<-partition.C // the partition's length: what is measured goes on meanwhile
	majorityReady := make([]int, len(majority))
	for i, n := range majority {
		majorityReady[i] = n.status(t.Context(), "/readyz")
	}
	pubs.stopSending()
	lan.heal(t)
	healed := time.Now()
	t.Logf("healed after %s", healed.Sub(cut).Round(time.Millisecond))

	resumeFilters := []string{"fo.>"}
	var resumes healResumes
	resumeClient := &http.Client{Transport: &http.Transport{Proxy: nil}}
	t.Cleanup(resumeClient.CloseIdleConnections)
	tick := time.NewTicker(healResumeEvery)
	for range healResumeCount {
		from := watcher.newest()
		seq, err := seqOf(from, epoch)
		if err != nil {
			t.Fatal(err)
		}
		r := &healResume{from: from, fromSeq: seq, began: time.Now(), want: healResumeEvents}
		resumes.start(r, resumeClient, victim.base, resumeFilters, epoch, time.Minute)
		<-tick.C
	}
	tick.Stop()
	pollUntil(t, time.Minute, "/readyz 200 on "+victim.name+" after the heal", func() bool {
		return victim.status(t.Context(), "/readyz") == http.StatusOK
	})
	resumes.wait()
	load.waitAcks(t, time.Minute, 150, healed, "after the heal")
	load.halt()
	pubs.halt()
	for _, p := range ready {
		p.halt()
	}
	clusterWaitHealthy(t, js, len(nodes), time.Minute)
	stream := readStreamNamed(t, js, streamName)

	// Every acknowledged publish is stored, once; those the cut-off node acknowledged during
	// the cut are reported apart.
	acks := append(load.acks.all(), pubs.acked("fo.a", victim.base)...)
	var minority []ack
	for _, a := range acks {
		if (a.via == victim.base || a.via == victim.natsURL) && !a.at.Before(cut) && !a.at.After(healed) {
			minority = append(minority, a)
		}
	}
	if missing := missingAcks(stream, minority); len(missing) > 0 {
		t.Errorf("%d of %d publishes that the cut-off %s acknowledged during the cut are not in the stream, e.g. %+v",
			len(missing), len(minority), victim.name, missing[0])
	}
	checkStored(t, stream, acks)
	// Every client received exactly the stream's events of its topics.
	clusterCheckClients(t, cc, stream)
	clusterCheckClients(t, watching, stream)
	// The resumes on the healed node continued exactly after their id.
	for i, r := range resumes.all {
		r.check(t, stream, resumeFilters, fmt.Sprintf("resume %d on the healed %s after %s (+%s after the heal)",
			i+1, victim.name, r.from, r.began.Sub(healed).Round(time.Millisecond)))
	}
	// The majority serves on: publishing stalls no longer than its election.
	stall, stallAt := longestGap(load.acks.times(""), cut, healed)
	t.Logf("majority: publishing stalled %s at most during the cut (from %s); %d publishes acknowledged during the cut",
		stall.Round(time.Millisecond), offset(stallAt, cut), countAcked(acks, cut, healed))
	if stall > majorityStall {
		t.Errorf("publishing through the majority stalled %s during the cut, want at most %s", stall.Round(time.Millisecond), majorityStall)
	}
	after, afterAt := longestGap(load.acks.times(""), healed, healed.Add(readyAfterHeal))
	t.Logf("after the heal: publishing stalled %s at most in the first %s (from %s)",
		after.Round(time.Millisecond), readyAfterHeal, offset(afterAt, healed))
	// What load balancers and publishers saw of each node.
	checkIsolatedReady(t, ready[vi].probes.all(), victim.name, cut, healed)
	for i, n := range majority {
		checkMajorityReady(t, ready[slices.Index(nodes, n)].sentWithin(cut, healed), n.name, majorityReady[i])
	}
	checkIsolatedPublishes(t, pubs.sentWithin(cut, healed), victim.name, healed)
	partitionSummary(t, cc, &resumes, minority, cut)
	t.Logf("%d events stored, %d acknowledged publishes (%d failed attempts retried: %s)", len(stream), len(acks), load.failures.Load(), load.errors(4))
}

// checkIsolatedReady checks the cut node's /readyz: 503 within isolatedUnready of the cut
// and then for the rest of it (one answer may lag), and 200 within readyAfterHeal of the
// heal.
func checkIsolatedReady(t *testing.T, probes []probe, name string, cut, healed time.Time) {
	t.Helper()
	first := time.Time{}
	var wrong []string
	for _, p := range probes {
		if p.sent.Before(cut) || !p.answered().Before(healed) {
			continue
		}
		if p.status == http.StatusServiceUnavailable && (first.IsZero() || p.answered().Before(first)) {
			first = p.answered()
		}
		if !p.sent.Before(cut.Add(isolatedUnready)) && p.status != http.StatusServiceUnavailable {
			wrong = append(wrong, fmt.Sprintf("%d at +%s (took %s)", p.status, p.sent.Sub(cut).Round(time.Millisecond), p.took.Round(time.Millisecond)))
		}
	}
	back := time.Time{}
	for _, p := range probes {
		if !p.sent.Before(healed) && p.status == http.StatusOK && (back.IsZero() || p.answered().Before(back)) {
			back = p.answered()
		}
	}
	if first.IsZero() {
		t.Errorf("cut-off %s: /readyz never answered 503 during the cut (%s)", name, partitionLength)
		t.Logf("isolated %s: /readyz never 503 during the cut", name)
	} else {
		took := first.Sub(cut)
		t.Logf("isolated %s: /readyz 503 %s after the cut", name, took.Round(time.Millisecond))
		if took > isolatedUnready {
			t.Errorf("cut-off %s: /readyz first answered 503 %s after the cut, want within %s", name, took.Round(time.Millisecond), isolatedUnready)
		}
	}
	if len(wrong) > 1 {
		t.Errorf("cut-off %s: %d /readyz answers other than 503 from %s after the cut until the heal: %s",
			name, len(wrong), isolatedUnready, strings.Join(wrong, ", "))
	}
	if back.IsZero() {
		t.Errorf("healed %s: /readyz never answered 200 after the heal", name)
		return
	}
	flaps, lastFlap := 0, time.Time{}
	for _, p := range probes {
		if p.sent.After(back) && p.status != http.StatusOK {
			flaps++
			if p.answered().After(lastFlap) {
				lastFlap = p.answered()
			}
		}
	}
	took := back.Sub(healed)
	if flaps == 0 {
		t.Logf("healed %s: /readyz 200 %s after the heal, and 200 since", name, took.Round(time.Millisecond))
	} else {
		t.Logf("healed %s: /readyz 200 %s after the heal, then %d answers other than 200, the last +%s after the heal",
			name, took.Round(time.Millisecond), flaps, lastFlap.Sub(healed).Round(time.Millisecond))
	}
	if took > readyAfterHeal {
		t.Errorf("healed %s: /readyz answered 200 %s after the heal, want within %s", name, took.Round(time.Millisecond), readyAfterHeal)
	}
}

// checkMajorityReady checks a majority node's /readyz during the cut: not 200 for at most
// majorityUnready in all (the election), and 200 at its end (atEnd).
func checkMajorityReady(t *testing.T, probes []probe, name string, atEnd int) {
	t.Helper()
	unready := 0
	statuses := map[int]int{}
	var slowest time.Duration
	for _, p := range probes {
		statuses[p.status]++
		slowest = max(slowest, p.took)
		if p.status != http.StatusOK {
			unready++
		}
	}
	total := time.Duration(unready) * probeInterval
	t.Logf("majority %s: /readyz not 200 for %s during the cut (%d of %d probes; statuses %v, 0 for no answer within %s; slowest %s); %d at its end",
		name, total, unready, len(probes), statuses, readyProbeTimeout, slowest.Round(time.Millisecond), atEnd)
	if total > majorityUnready {
		t.Errorf("majority %s: /readyz not 200 for %s during the cut, want at most %s", name, total, majorityUnready)
	}
	if atEnd != http.StatusOK {
		t.Errorf("majority %s: /readyz %d at the end of the cut, want 200", name, atEnd)
	}
}

// checkIsolatedPublishes checks the publishes to the cut node during the cut: each answered
// within isolatedPublish, and those answered before the heal with 503 and Retry-After.
func checkIsolatedPublishes(t *testing.T, probes []probe, name string, healed time.Time) {
	t.Helper()
	var slowest time.Duration
	statuses := map[int]int{}
	var wrong []string
	for _, p := range probes {
		slowest = max(slowest, p.took)
		statuses[p.status]++
		switch {
		case p.took > isolatedPublish:
			wrong = append(wrong, fmt.Sprintf("%d after %s", p.status, p.took.Round(time.Millisecond)))
		case p.answered().After(healed):
		case p.status != http.StatusServiceUnavailable:
			wrong = append(wrong, fmt.Sprintf("%d after %s", p.status, p.took.Round(time.Millisecond)))
		case p.retryAfter == "":
			wrong = append(wrong, fmt.Sprintf("503 without Retry-After after %s", p.took.Round(time.Millisecond)))
		}
	}
	t.Logf("isolated %s: %d publishes during the cut, answered in %s at most, statuses %v", name, len(probes), slowest.Round(time.Millisecond), statuses)
	if len(probes) == 0 {
		t.Errorf("no publish to the cut-off %s during the cut", name)
	}
	if len(wrong) > 0 {
		t.Errorf("cut-off %s: %d of %d publishes during the cut not answered 503 with Retry-After within %s: %s",
			name, len(wrong), len(probes), isolatedPublish, strings.Join(wrong[:min(len(wrong), 10)], ", "))
	}
}

// partitionSummary logs the duplicates and gap notices the clients met.
func partitionSummary(t *testing.T, cc *resumers, resumes *healResumes, minority []ack, cut time.Time) {
	t.Helper()
	dups, gaps := 0, 0
	for _, c := range cc.clients {
		for i := 1; i < len(c.seqs); i++ {
			if c.seqs[i] <= c.seqs[i-1] {
				dups++
			}
		}
		if c.err != nil && strings.Contains(c.err.Error(), "gap notice") {
			gaps++
		}
	}
	hdups, hgaps, retries, firsts := 0, 0, 0, []string{}
	for _, r := range resumes.all {
		hdups += r.duplicates()
		if r.gap != "" {
			hgaps++
		}
		retries += len(r.retries)
		if len(r.seqs) == 0 {
			firsts = append(firsts, "none")
		} else {
			firsts = append(firsts, r.first.Round(time.Millisecond).String())
		}
	}
	t.Logf("clients: %d duplicates, %d false gaps; resumes on the healed node: %d duplicates, %d false gaps, %d retry-only answers, first event after %v",
		dups, gaps, hdups, hgaps, retries, firsts)
	var at []string
	for _, a := range minority {
		at = append(at, fmt.Sprintf("%s (%s, seq %d, first attempt %s)", offset(a.at, cut), a.kind, a.seq, offset(a.began, cut)))
	}
	t.Logf("%d publishes acknowledged by the cut-off node during the cut, at %v", len(minority), at)
}

// countAcked counts the acks acknowledged in [from, to].
func countAcked(acks []ack, from, to time.Time) int {
	n := 0
	for _, a := range acks {
		if !a.at.Before(from) && !a.at.After(to) {
			n++
		}
	}
	return n
}

// offset says when t was relative to ref: "+1.5s", "-20ms".
func offset(t, ref time.Time) string {
	d := t.Sub(ref).Round(time.Millisecond)
	if d < 0 {
		return d.String()
	}
	return "+" + d.String()
}
