package e2e

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/natsse/natsse/sseformat"
)

// TestResumeGapFree keeps publishing (over HTTP, JetStream and core NATS at once) while a
// client disconnects and reconnects with its last id again and again, alternating the
// Last-Event-ID header and the last_event_id query parameter. In the end the client must
// have received exactly the events of its topics, as stored in the stream: none missing,
// none twice, in order.
func TestResumeGapFree(t *testing.T) {
	t.Parallel()
	forSettings(t, []setting{
		{name: "from memory", env: nil},
		{name: "from the store", env: []string{"GATEWAY_RECENT_EVENTS=0"}},
		{name: "small ring", env: []string{"GATEWAY_RECENT_EVENTS=100"}},
	}, func(t *testing.T, s setting) {
		testResume(t, s.env)
	})
}

func testResume(t *testing.T, env []string) {
	const (
		perPublisher = 1500
		maxPerConn   = 120 // events a connection takes before the client disconnects
	)
	g := startGateway(t, env...)
	nc, js := g.natsConn(t)
	filters := []string{"r.a", "r.b.*"}
	topics := []string{"r.a", "r.b.x", "r.c", "r.b.y", "r.b.x.deep"}

	// The first connection asks for the whole history, before anything is published.
	stream := g.subscribe(t, topicQuery(filters...)+"&last_event_id=earliest")

	var wg sync.WaitGroup
	pubErr := make(chan error, 2)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	published := make(chan struct{})
	// At each checkpoint the HTTP publisher waits until the client has reconnected: some
	// reconnections happen while publishing is going on, however fast it is.
	checkpoints := []int{perPublisher / 4, perPublisher / 2, 3 * perPublisher / 4}
	reconnect := make(chan chan struct{}) // the publisher's request; closed once reconnected
	var firstID string                    // the first HTTP answer, written before published is closed
	wg.Add(2)
	go func() { // HTTP
		defer wg.Done()
		for i := range perPublisher {
			if slices.Contains(checkpoints, i) {
				reconnected := make(chan struct{})
				select {
				case reconnect <- reconnected:
				case <-ctx.Done():
					return
				}
				select {
				case <-reconnected:
				case <-ctx.Done():
					return
				}
			}
			topic := topics[i%len(topics)]
			res, err := g.tryPublish(ctx, topic, "h", fmt.Sprintf("http-%d", i), "")
			if err != nil {
				pubErr <- err
				return
			}
			if i == 0 {
				firstID = res.ID
			}
		}
	}()
	go func() { // NATS: JetStream publishes with acks, and core publishes
		defer wg.Done()
		for i := range perPublisher {
			topic := topics[(i+2)%len(topics)]
			var err error
			if i%2 == 0 {
				_, err = js.PublishMsg(ctx, natsMsg(topic, "j", fmt.Sprintf("js-%d", i), ""))
			} else {
				err = nc.PublishMsg(natsMsg(topic, "", fmt.Sprintf("core-%d", i), ""))
			}
			if err != nil {
				pubErr <- err
				return
			}
		}
		if err := nc.Flush(); err != nil {
			pubErr <- err
		}
	}()
	go func() {
		wg.Wait()
		close(published)
	}()

	seed := uint64(time.Now().UnixNano())
	t.Logf("disconnection pattern seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	var got []sseformat.Event
	var want []sseformat.Event // known once publishing is over
	lastID := ""
	conns := 1
	connsLive := 0                // reconnections while publishing was going on
	var reconnected chan struct{} // the publisher waits for a reconnection
	deadline := time.Now().Add(60 * time.Second)
	for {
		// Take some events from the current connection, then drop it.
		n := rng.IntN(maxPerConn + 1)
		if rng.IntN(8) == 0 {
			n = 0 // reconnect at once
		}
		for taken := 0; taken < n; {
			if want == nil {
				select {
				case <-published:
					select {
					case err := <-pubErr:
						t.Fatalf("publisher: %v", err)
					default:
					}
					msgs := readStream(t, js)
					checkDistinct(t, msgs, 2*perPublisher)
					want = expectedEvents(msgs, epochOf(t, firstID), filters)
				case err := <-pubErr:
					t.Fatalf("publisher: %v", err)
				case reconnected = <-reconnect:
				default:
				}
			}
			if reconnected != nil || (want != nil && len(got) >= len(want)) {
				break
			}
			timeout := eventTimeout
			if want == nil {
				timeout = 100 * time.Millisecond // then look whether publishing is over
			}
			ev, err := stream.recv(timeout)
			if errors.Is(err, errTimeout) && want == nil && time.Now().Before(deadline) {
				continue
			}
			if err != nil {
				t.Fatalf("connection %d (resumed from %q), after %d events: %v", conns, lastID, len(got), err)
			}
			got = append(got, ev)
			lastID = ev.ID
			taken++
		}
		stream.close()
		if want != nil && len(got) >= len(want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %d connections, %d events of %d", conns, len(got), len(want))
		}
		conns++
		switch {
		case lastID == "":
			stream = g.subscribe(t, topicQuery(filters...)+"&last_event_id=earliest")
		case conns%2 == 0:
			stream = g.subscribeFrom(t, topicQuery(filters...), lastID)
		default:
			stream = g.subscribe(t, topicQuery(filters...)+"&last_event_id="+url.QueryEscape(lastID))
		}
		if !isClosed(published) {
			connsLive++ // the stream is established and publishing is not over
		}
		if reconnected != nil {
			close(reconnected)
			reconnected = nil
		}
	}
	t.Logf("%d events over %d connections, %d of them opened while publishing", len(got), conns, connsLive)
	if connsLive < len(checkpoints) {
		t.Errorf("%d reconnections while publishing, want at least %d", connsLive, len(checkpoints))
	}
	compareEvents(t, got, want)
	// Nothing follows the last event.
	g.expectNothingElse(t, "r.a", g.subscribeFrom(t, topicQuery(filters...), lastID))
}

// expectedEvents lists the events a client of filters receives, from the stream's messages.
func expectedEvents(msgs []storedMsg, epoch string, filters []string) []sseformat.Event {
	var want []sseformat.Event
	for _, m := range msgs {
		if matchAny(filters, m.topic) {
			want = append(want, sseformat.Event{ID: formatID(epoch, m.seq), Type: m.typ, Data: wireData(m.data)})
		}
	}
	return want
}

// checkDistinct checks that the stream holds n messages, each with distinct data.
func checkDistinct(tb testing.TB, msgs []storedMsg, n int) {
	tb.Helper()
	seen := make(map[string]bool, len(msgs))
	for _, m := range msgs {
		if seen[m.data] {
			tb.Errorf("%q stored twice", m.data)
		}
		seen[m.data] = true
	}
	if len(msgs) != n {
		tb.Fatalf("stream holds %d messages, want %d", len(msgs), n)
	}
}

// compareEvents reports the first differences between the events received and expected.
func compareEvents(tb testing.TB, got, want []sseformat.Event) {
	tb.Helper()
	bad := 0
	for i := range max(len(got), len(want)) {
		var g, w sseformat.Event
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g != w {
			tb.Errorf("event %d: got %+v, want %+v", i, g, w)
			if bad++; bad == 10 {
				tb.Fatalf("... (%d events received, %d expected)", len(got), len(want))
			}
		}
	}
	if bad > 0 {
		tb.Fatalf("%d events received, %d expected", len(got), len(want))
	}
}

// TestResumePosition checks where a stream starts: live by default, after the
// last_event_id parameter or Last-Event-ID header (the header wins when both are given),
// the whole history with last_event_id=earliest, and nothing more than the topics ask for.
func TestResumePosition(t *testing.T) {
	t.Parallel()
	forSettings(t, []setting{
		{name: "from memory"},
		{name: "from the store", env: []string{"GATEWAY_RECENT_EVENTS=0"}},
	}, func(t *testing.T, s setting) {
		testResumePosition(t, startGateway(t, s.env...))
	})
}

func testResumePosition(t *testing.T, g *gatewayProc) {
	var ids []string
	var want []sseformat.Event // every event of p.x, markers included
	for i := range 10 {
		ids = append(ids, g.publish(t, "p.x", "", fmt.Sprintf("e%d", i)).ID)
		want = append(want, sseformat.Event{ID: ids[i], Data: fmt.Sprintf("e%d", i)})
		g.publish(t, "p.other", "", "other")
	}
	// nothingElse checks that the next event of s is a marker published now on p.x, which
	// the streams of the later checks receive too.
	nothingElse := func(t *testing.T, s *sseStream) {
		t.Helper()
		want = append(want, g.expectNothingElse(t, "p.x", s))
	}
	// check expects the p.x events from index from on, and then nothing else.
	check := func(t *testing.T, s *sseStream, from int) {
		t.Helper()
		for i := from; i < len(want); i++ {
			if ev := s.next(t); ev != want[i] {
				t.Fatalf("event %d: got %+v, want %+v", i, ev, want[i])
			}
		}
		nothingElse(t, s)
	}
	t.Run("live", func(t *testing.T) {
		nothingElse(t, g.subscribe(t, "topic=p.x"))
	})
	t.Run("earliest", func(t *testing.T) {
		check(t, g.subscribe(t, "topic=p.x&last_event_id=earliest"), 0)
	})
	t.Run("query", func(t *testing.T) {
		check(t, g.subscribe(t, "topic=p.x&last_event_id="+url.QueryEscape(ids[3])), 4)
	})
	t.Run("header", func(t *testing.T) {
		check(t, g.subscribeFrom(t, "topic=p.x", ids[6]), 7)
	})
	t.Run("header wins over query", func(t *testing.T) {
		check(t, g.subscribeFrom(t, "topic=p.x&last_event_id="+url.QueryEscape(ids[1]), ids[8]), 9)
	})
	t.Run("header wins over earliest", func(t *testing.T) {
		check(t, g.subscribeFrom(t, "topic=p.x&last_event_id=earliest", ids[5]), 6)
	})
	t.Run("before the first event", func(t *testing.T) {
		check(t, g.subscribeFrom(t, "topic=p.x", formatID(epochOf(t, ids[0]), 0)), 0)
	})
	t.Run("overlapping filters", func(t *testing.T) {
		check(t, g.subscribeFrom(t, topicQuery("p.x", "*.x", "p.x", "q"), ids[4]), 5)
	})
	t.Run("wildcards", func(t *testing.T) {
		s := g.subscribeFrom(t, topicQuery("*.x", "nothing.>"), ids[2])
		check(t, s, 3)
	})
	t.Run("envelope", func(t *testing.T) {
		s := g.subscribeFrom(t, "topic=p.x&envelope=true", ids[7])
		for i := 8; i < 10; i++ {
			checkEnvelope(t, s.next(t), sseformat.Event{ID: ids[i], Data: envelopeJSON(t, "p.x", "", fmt.Sprintf("e%d", i))})
		}
	})
	t.Run("at the end", func(t *testing.T) {
		last := want[len(want)-1].ID
		nothingElse(t, g.subscribeFrom(t, "topic=p.x", last))
	})
	t.Run("then live", func(t *testing.T) {
		s := g.subscribeFrom(t, "topic=p.x", ids[7])
		check(t, s, 8)
		res := g.publish(t, "p.x", "", "live")
		if ev := s.next(t); ev.ID != res.ID || ev.Data != "live" {
			t.Errorf("got %+v, want the live event %s", ev, res.ID)
		}
	})
}
