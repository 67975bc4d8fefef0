package natsbus

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// countBy returns a PresenceCounter that answers n for every topic.
func countBy(n uint64) PresenceCounter {
	return func(topics []string) []uint64 {
		out := make([]uint64, len(topics))
		for i := range out {
			out[i] = n
		}
		return out
	}
}

func servePresence(t *testing.T, b *Bus, count PresenceCounter) *Presence {
	t.Helper()
	p, err := b.ServePresence(count)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// surveyWait is long enough that a survey that waits it out fails the test rather than
// pass by luck: a survey of gateways that all answer ends long before.
const surveyWait = 20 * time.Second

// TestPresenceAlone: a gateway alone answers a survey itself, without waiting, and
// refuses topics with wildcards.
func TestPresenceAlone(t *testing.T) {
	t.Parallel()
	b := newTestBus(t)
	p := servePresence(t, b, func(topics []string) []uint64 {
		out := make([]uint64, len(topics))
		for i, topic := range topics {
			out[i] = uint64(len(topic))
		}
		return out
	})
	res, err := p.Survey(t.Context(), []string{"a", "bb.c"}, surveyWait)
	if err != nil || fmt.Sprint(res.Streams) != "[1 4]" || res.Gateways != 1 || !res.AllAnswered {
		t.Fatalf("survey: %+v, %v; want [1 4] from 1 gateway, all answered", res, err)
	}
	for _, bad := range [][]string{{"a.*"}, {"a", "b.>"}, {}, make([]string, MaxSurveyTopics+1)} {
		if _, err := p.Survey(t.Context(), bad, surveyWait); err == nil {
			t.Errorf("survey of %q accepted", bad)
		}
	}
	// A Presence outlives its Bus harmlessly: its goroutine ends with the Bus.
	b.Close()
	if _, err := p.Survey(t.Context(), []string{"a"}, surveyWait); err != nil {
		t.Logf("survey after the bus closed: %v", err)
	}
	closed := make(chan struct{})
	go func() { p.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(surveyWait):
		t.Fatal("Close hangs after the bus closed")
	}
}

// TestPresenceIgnoresMalformedRequests sends the responder requests it must not answer,
// then one it must: the first answer is the right one.
func TestPresenceIgnoresMalformedRequests(t *testing.T) {
	t.Parallel()
	b := newTestBus(t, func(o *Options) { o.ClientAddr = "127.0.0.1:0" })
	servePresence(t, b, countBy(7))
	nc, err := nats.Connect(b.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	inbox := nats.NewInbox()
	answers, err := nc.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	subject := presenceSubjectPrefix + b.opts.Stream
	request := func(from string, topics ...string) []byte {
		data, _ := json.Marshal(presenceRequest{From: from, Topics: topics})
		return data
	}
	tooMany := make([]string, MaxSurveyTopics+1)
	for i := range tooMany {
		tooMany[i] = "t"
	}
	for _, bad := range [][]byte{
		nil, []byte("not json"), []byte(`{"from":"x","topics":"a"}`), []byte(`[1,2]`),
		request("x"), request("x", "a.*"), request("x", "a", "b.>"), request("x", "a..b"), request("", "a"),
		request(strings.Repeat("x", maxPresenceID+1), "a"), request("x", tooMany...),
		append(request("x", "a"), make([]byte, maxPresenceRequest)...), // too long
	} {
		if err := nc.PublishRequest(subject, inbox, bad); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Publish(subject, request("x", "a")); err != nil { // no reply subject
		t.Fatal(err)
	}
	if err := nc.PublishRequest(subject, inbox, request("x", "a", "b.c")); err != nil {
		t.Fatal(err)
	}
	m, err := answers.NextMsg(surveyWait)
	if err != nil {
		t.Fatal(err)
	}
	var a presenceAnswer
	if err := json.Unmarshal(m.Data, &a); err != nil || fmt.Sprint(a.Streams) != "[7 7]" || a.From == "" {
		t.Fatalf("first answer %s (%v), want the valid request's [7 7]", m.Data, err)
	}
}

// TestPresenceOutOfClientsReach: a NATS client with a token, even one granted every topic,
// can neither ask nor answer presence surveys.
func TestPresenceOutOfClientsReach(t *testing.T) {
	t.Parallel()
	b := newTestBus(t, func(o *Options) {
		o.ClientAddr = "127.0.0.1:0"
		o.ClientAuth = func(string) (ClientGrants, error) {
			return ClientGrants{Name: "all", Publish: []string{">"}, Subscribe: []string{">"}}, nil
		}
	})
	servePresence(t, b, countBy(1))
	errs := make(chan error, 4)
	nc, err := nats.Connect(b.ClientURL(), nats.Token("any"),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { errs <- err }))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	subject := presenceSubjectPrefix + b.opts.Stream
	for _, try := range []func() error{
		func() error { _, err := nc.SubscribeSync(subject); return err },
		func() error {
			return nc.PublishRequest(subject, nats.NewInbox(), []byte(`{"from":"x","topics":["a"]}`))
		},
	} {
		if err := try(); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-errs:
			if !errors.Is(err, nats.ErrPermissionViolation) && !strings.Contains(err.Error(), "Permissions Violation") {
				t.Fatalf("want a permissions violation, got %v", err)
			}
		case <-time.After(surveyWait):
			t.Fatal("the server allowed a token client the presence subject")
		}
	}
}

// TestPresenceCluster: on three nodes whose clients need tokens, each gateway's survey
// reaches the three (the gateways' own connections may use the presence subject), ends
// as soon as they have answered, and counts each once — even when a wildcard subscription
// hides the others from the server's count of interest. A gateway that stops answering is
// waited for as long as its server runs, and not once it has stopped.
func TestPresenceCluster(t *testing.T) {
	t.Parallel()
	buses := newTestCluster(t)
	presences := make([]*Presence, len(buses))
	for i, b := range buses {
		presences[i] = servePresence(t, b, countBy([]uint64{1, 10, 100}[i]))
	}
	subject := presences[0].subject
	survey := func(i int, wait time.Duration) PresenceCounts {
		t.Helper()
		res, err := presences[i].Survey(t.Context(), []string{"a", "b.c"}, wait)
		if err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
		return res
	}
	// Each node learns of the others' subscriptions through its routes.
	waitUntil(t, func() bool {
		for _, b := range buses {
			if b.ns.GlobalAccount().Interest(subject) != 3 {
				return false
			}
		}
		return true
	}, "every node has the three subscriptions")

	// A wildcard subscription on node 2 hides the others from node 0's count of interest
	// (until node 0 has matched the subject for a message): the survey still waits for
	// every gateway.
	wildcard, err := buses[2].nc.SubscribeSync("_NATSSE.>")
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, func() bool { return buses[0].ns.GlobalAccount().SubscriptionInterest("_NATSSE.other") }, "node 0 has the wildcard")
	t.Logf("with a wildcard subscription on node 2, node 0 counts an interest of %d", buses[0].ns.GlobalAccount().Interest(subject))
	if res := survey(0, 5*time.Second); fmt.Sprint(res.Streams) != "[111 111]" || res.Gateways != 3 {
		t.Fatalf("node 0 with a wildcard subscription: %+v, want [111 111] from 3 gateways", res)
	}
	wildcard.Unsubscribe()
	waitUntil(t, func() bool { return !buses[0].ns.GlobalAccount().SubscriptionInterest("_NATSSE.other") }, "node 0 has lost the wildcard")

	for i := range buses {
		if res := survey(i, surveyWait); fmt.Sprint(res.Streams) != "[111 111]" || res.Gateways != 3 || !res.AllAnswered {
			t.Fatalf("node %d: %+v, want [111 111] from 3 gateways, all answered", i, res)
		}
	}

	presences[2].Close()
	waitUntil(t, func() bool { return buses[0].ns.GlobalAccount().Interest(subject) == 2 }, "node 0 has two subscriptions")
	if res := survey(0, 5*time.Second); fmt.Sprint(res.Streams) != "[11 11]" || res.Gateways != 2 || res.AllAnswered {
		t.Fatalf("node 0 while node 2 runs without answering: %+v, want [11 11] from 2 gateways, not all answered", res)
	}
	buses[2].Close()
	waitUntil(t, func() bool { return buses[0].ns.NumRemotes() == 1 }, "node 0 has lost node 2")
	if res := survey(0, surveyWait); fmt.Sprint(res.Streams) != "[11 11]" || res.Gateways != 2 || !res.AllAnswered {
		t.Fatalf("node 0 without node 2: %+v, want [11 11] from 2 gateways, all answered", res)
	}
}

// waitUntil polls cond until it holds, failing the test if it does not in time.
func waitUntil(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(surveyWait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		<-time.After(20 * time.Millisecond) // polling interval
	}
}

// TestPresenceExternal: gateways on an external deployment cannot know how many they are,
// so a survey waits its time, and counts every gateway that answered meanwhile.
func TestPresenceExternal(t *testing.T) {
	t.Parallel()
	ns := runNATS(t, freePorts(t, 1)[0])
	var presences []*Presence
	for i := range 2 {
		b := newTestBus(t, func(o *Options) { o.URLs = []string{ns.ClientURL()} })
		presences = append(presences, servePresence(t, b, countBy([]uint64{1, 10}[i])))
	}
	res, err := presences[0].Survey(t.Context(), []string{"a"}, 5*time.Second)
	if err != nil || fmt.Sprint(res.Streams) != "[11]" || res.Gateways != 2 || res.AllAnswered {
		t.Fatalf("survey: %+v, %v; want [11] from 2 gateways, not known to be all", res, err)
	}
}
