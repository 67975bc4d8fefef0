package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

// TestFanOut has many subscribers with different topic filters (some enveloped) while
// several publishers publish at once over HTTP, JetStream (async) and core NATS. Every
// subscriber must receive exactly the events of the stream its filters match, in stream
// order.
func TestFanOut(t *testing.T) {
	t.Parallel()
	const perPublisher = 200
	g := startGateway(t)
	nc, js := g.natsConn(t)
	topics := []string{"f.eu.orders", "f.eu.payments", "f.us.orders", "f.us.payments", "f.asia", "g.other"}
	filterSets := [][]string{
		{">"}, {"f.>"}, {"f.eu.*"}, {"f.*.orders"}, {"f.asia"}, {"f.eu.orders", "f.us.orders"},
		{"f.*.payments", "f.asia"}, {"g.*"}, {"f.*"}, {"f.eu.orders"}, {"nothing"},
		{"f.>", "f.eu.orders"}, {"*.*.*"}, {"f.us.>"},
	}
	type sub struct {
		filters  []string
		envelope bool
		stream   *sseStream
	}
	var subs []sub
	for i := range 3 {
		for _, fs := range filterSets {
			q := topicQuery(fs...)
			env := i == 1
			if env {
				q += "&envelope=true"
			}
			subs = append(subs, sub{filters: fs, envelope: env, stream: g.subscribe(t, q)})
		}
	}

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	var firstIDs [2]string // the first HTTP answers
	for p := range 2 {
		wg.Go(func() {
			for i := range perPublisher {
				res, err := g.tryPublish(ctx, topics[(i+p)%len(topics)], "h", fmt.Sprintf("http%d-%d", p, i), "")
				if err != nil {
					errs <- err
					return
				}
				if i == 0 {
					firstIDs[p] = res.ID
				}
			}
		})
	}
	wg.Go(func() {
		var futures []jetstream.PubAckFuture
		for i := range perPublisher {
			f, err := js.PublishMsgAsync(natsMsg(topics[i%len(topics)], "j", fmt.Sprintf("js-%d", i), ""))
			if err != nil {
				errs <- err
				return
			}
			futures = append(futures, f)
		}
		for _, f := range futures {
			select {
			case <-f.Ok():
			case err := <-f.Err():
				errs <- err
				return
			}
		}
	})
	wg.Go(func() {
		for i := range perPublisher {
			if err := nc.PublishMsg(natsMsg(topics[(i+3)%len(topics)], "", fmt.Sprintf("core-%d", i), "")); err != nil {
				errs <- err
				return
			}
		}
		if err := nc.Flush(); err != nil {
			errs <- err
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("publish: %v", err)
	}

	// Then a marker for each filter set, on a topic it matches: every subscriber's last
	// events are markers, and anything it should not have got, or got twice, would come
	// before them.
	for i, fs := range filterSets {
		g.publish(t, markerTopic(fs[0]), "marker", fmt.Sprintf("marker %d", i))
	}
	published := 4*perPublisher + len(filterSets)

	// What each subscriber must get: the stream's messages, read directly.
	var msgs []storedMsg
	pollUntil(t, eventTimeout, "every publication stored", func() bool {
		msgs = readStream(t, js)
		return len(msgs) == published
	})
	checkDistinct(t, msgs, published)
	epoch := epochOf(t, firstIDs[0])
	for i, s := range subs {
		t.Run(fmt.Sprintf("%d %v envelope=%v", i, s.filters, s.envelope), func(t *testing.T) {
			want := expectedEvents(msgs, epoch, s.filters)
			if s.envelope {
				k := 0
				for _, m := range msgs {
					if matchAny(s.filters, m.topic) {
						want[k].Data = envelopeJSON(t, m.topic, m.typ, m.data)
						k++
					}
				}
			}
			got := s.stream.take(t, len(want))
			if s.envelope {
				for k := range want {
					checkEnvelope(t, got[k], want[k])
				}
			} else {
				compareEvents(t, got, want)
			}
			if last := got[len(got)-1]; last.Type != "marker" {
				t.Errorf("last event %+v, want a marker", last)
			}
		})
	}
}

// markerTopic is a topic that filter matches: its wildcards made a token "m".
func markerTopic(filter string) string {
	tokens := strings.Split(filter, ".")
	for i, tok := range tokens {
		if tok == "*" || tok == ">" {
			tokens[i] = "m"
		}
	}
	return strings.Join(tokens, ".")
}
