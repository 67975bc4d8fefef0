package gateway

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/natsse/natsse/natsbus"
)

// countRequests counts the messages on subject (a JetStream API request's, wildcards allowed)
// that reach the server at url.
func countRequests(t *testing.T, url, subject string) *atomic.Int64 {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	var n atomic.Int64
	if _, err := nc.Subscribe(subject, func(*nats.Msg) { n.Add(1) }); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return &n
}

// waitDispatched waits until e's hub has dispatched the event with sequence seq.
func (e *testEnv) waitDispatched(t *testing.T, seq uint64) {
	t.Helper()
	eventually(t, func() bool { return e.gw.Stats().LastSeq >= seq },
		func() string { return fmt.Sprintf("hub at %d, want %d", e.gw.Stats().LastSeq, seq) })
}

// TestResumeSameOnEveryGateway resumes the same ids on two gateways that share a stream:
// one runs the stream's server (it reads the stream's state in place), the other is on
// that server as an external deployment (it asks the stream). Both rings still hold every
// event, but the stream's limits have removed most of them: each id gets the same answer,
// gap or not, on both, and the same events after it.
func TestResumeSameOnEveryGateway(t *testing.T) {
	t.Parallel()
	const kept = 10
	a := newTestEnv(t, nil, func(o *natsbus.Options) { o.ClientAddr = "127.0.0.1:0"; o.MaxMsgs = kept })
	b := newTestEnv(t, nil, func(o *natsbus.Options) { o.URLs = []string{a.bus.ClientURL()}; o.MaxMsgs = kept })
	if a.bus.Epoch() != b.bus.Epoch() {
		t.Fatalf("epochs %d and %d: not the same stream", a.bus.Epoch(), b.bus.Epoch())
	}
	var ids []string
	for i := range 50 {
		ids = append(ids, a.publish(t, []string{"s.a", "s.b"}[i%2], "", fmt.Sprint(i)))
	}
	a.waitDispatched(t, 50)
	b.waitDispatched(t, 50)
	ahead := position{epoch: a.bus.Epoch(), seq: 60}.String()
	reset := position{epoch: a.bus.Epoch() + 1, seq: 3}.String()

	// answer is what a stream of s.a resumed from lastID starts with: the gap notice's
	// data, if any, and the ids of the events up to the last one published.
	answer := func(e *testEnv, lastID string) string {
		c := e.subscribe(t, "topic=s.a", lastID)
		defer c.close()
		var got []string
		for {
			ev := c.next(t)
			if ev.Type == GapEventType {
				got = append(got, "gap "+ev.ID+" "+ev.Data)
				if strings.Contains(ev.Data, `"ahead"`) {
					return strings.Join(got, "\n")
				}
				continue
			}
			got = append(got, ev.ID)
			if ev.ID == ids[48] {
				return strings.Join(got, "\n")
			}
		}
	}
	for _, lastID := range []string{ids[0], ids[20], ids[38], ids[39], ids[40], ids[44], reset, ahead} {
		onA, onB := answer(a, lastID), answer(b, lastID)
		if onA != onB {
			t.Errorf("resume from %s: the stream's server answers\n%s\nthe other gateway\n%s", lastID, onA, onB)
		}
		if lastID == ids[0] && !strings.Contains(onA, `"expired"`) {
			t.Errorf("resume from %s, removed by the limits: no expired gap in\n%s", lastID, onA)
		}
	}
}

// TestResumeStormFromRing reconnects a storm of streams at once, each with the id of an
// event the ring still holds, on a gateway that runs the stream's server: none asks the
// stream for its state, and each receives exactly the events of its topic after its id,
// in order, and then live events.
func TestResumeStormFromRing(t *testing.T) {
	t.Parallel()
	const (
		streams = 300
		topics  = 10
		events  = 200
	)
	e := newTestEnv(t, nil, func(o *natsbus.Options) { o.ClientAddr = "127.0.0.1:0" })
	requests := countRequests(t, e.bus.ClientURL(), "$JS.API.STREAM.INFO."+natsbus.DefaultOptions().Stream)
	topic := func(i int) string { return fmt.Sprintf("storm.t%d", i%topics) }
	var ids []string // ids[i] is event i, on topic(i)
	for i := range events {
		ids = append(ids, e.publish(t, topic(i), "", fmt.Sprint(i)))
	}
	e.waitDispatched(t, events)
	before := requests.Load()

	var wg sync.WaitGroup
	start := make(chan struct{})
	clients := make([]*sseClient, streams)
	errs := make(chan error, streams)
	for i := range streams {
		wg.Go(func() {
			<-start
			// Stream i resumes after event from, one of its topic's.
			from := (i * 7) % (events - topics) / topics * topics
			from += i % topics
			c, err := e.trySubscribe(t, "topic="+topic(i), ids[from])
			if err != nil {
				errs <- err
				return
			}
			clients[i] = c
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := requests.Load() - before; n != 0 {
		t.Errorf("%d resumes from the ring sent %d requests for the stream's state, want none", streams, n)
	}
	live := make([]string, topics)
	for i := range topics {
		live[i] = e.publish(t, topic(i), "", "live")
	}
	for i, c := range clients {
		from := (i*7)%(events-topics)/topics*topics + i%topics
		var want []string
		for j := from + topics; j < events; j += topics {
			want = append(want, ids[j])
		}
		want = append(want, live[i%topics])
		for k, id := range want {
			if ev := c.next(t); ev.ID != id || ev.Type != "" {
				t.Fatalf("stream %d (from %s), event %d: %+v, want %s", i, ids[from], k, ev, id)
			}
		}
		c.close()
	}
}
