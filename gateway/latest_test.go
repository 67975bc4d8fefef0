package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/natsse/natsse/natsbus"
	"github.com/natsse/natsse/sseformat"
)

// TestStreamLatest connects many clients with latest=true while events keep coming, over
// HTTP, JetStream publishes and core NATS publishes. Each must receive the newest event of
// each of its topics as of where it started, then every later event: none lost, none twice,
// in stream order.
func TestStreamLatest(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		recent int
	}{{"catching up from memory", 4096}, {"catching up from the store", 0}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			testStreamLatest(t, tc.recent)
		})
	}
}

func testStreamLatest(t *testing.T, recent int) {
	e := newTestEnv(t, func(o *Options) { o.RecentEvents = recent }, func(o *natsbus.Options) { o.ClientAddr = "127.0.0.1:0" })
	nc, err := nats.Connect(e.bus.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	// Event i is published over HTTP, with a JetStream publish or with a core publish.
	published := 0
	pub := func(ctx context.Context, topic string) error {
		i := published
		published++
		data := fmt.Sprintf("%s #%d", topic, i)
		switch i % 3 {
		case 0:
			return postEvent(ctx, e.srv.URL, topic, data)
		case 1:
			_, err := js.Publish(ctx, "sse."+topic, []byte(data))
			return err
		default:
			return nc.Publish("sse."+topic, []byte(data))
		}
	}
	// stored waits until the stream and the hub hold every event published so far.
	stored := func() {
		t.Helper()
		eventually(t, func() bool {
			_, last, err := e.bus.State(t.Context())
			return err == nil && last == uint64(published) && e.gw.Stats().LastSeq == last
		}, func() string { return fmt.Sprintf("the stream does not hold the %d events published", published) })
	}

	// room.1 to room.3 get events before the clients come and none after: only the
	// newest-per-topic phase can send them. room.4 to room.6 keep changing; other.x is
	// not asked for, and hall.never is asked for but never published.
	query := "topic=room.*&topic=hall.never&latest=true"
	for i := 0; i < 60; i++ {
		topic := []string{"room.1", "room.2", "room.3", "room.4", "room.5", "room.6", "other.x"}[i%7]
		if err := pub(t.Context(), topic); err != nil {
			t.Fatal(err)
		}
	}
	stored()

	const clients = 24
	// Client i connects once 20+5i events more are published, while publishing goes on
	// until every client is connected (and for 300 events at least).
	marks := make([]chan struct{}, clients)
	for i := range marks {
		marks[i] = make(chan struct{})
	}
	connected := make(chan struct{})
	pubDone := make(chan struct{})
	var pubErr error
	go func() {
		defer close(pubDone)
		for i, next := 0, 0; ; i++ {
			if next < clients && i == 20+5*next {
				close(marks[next])
				next++
			}
			if i >= 300 {
				select {
				case <-connected:
					return
				default:
				}
			}
			topic := []string{"room.4", "room.5", "room.6", "other.x"}[i%4]
			if pubErr = pub(context.Background(), topic); pubErr != nil {
				return
			}
		}
	}()

	type client struct {
		envelope     bool
		lower, upper uint64 // bounds of the hub's position where the stream started
		got          []sseformat.Event
		err          error
	}
	cs := make([]*client, clients)
	var opened, read sync.WaitGroup
	end := make(chan struct{}) // closed once the last event is published
	for i := range cs {
		cl := &client{envelope: i%2 == 1}
		cs[i] = cl
		opened.Add(1)
		read.Add(1)
		go func() {
			defer read.Done()
			select {
			case <-marks[i]:
			case <-pubDone: // publishing failed
				opened.Done()
				return
			}
			cl.lower = e.gw.Stats().LastSeq
			q := query
			if cl.envelope {
				q += "&envelope=true"
			}
			c, err := e.trySubscribe(t, q, "") // returns with the headers: the start is fixed
			_, cl.upper, _ = e.bus.State(context.Background())
			opened.Done()
			if err != nil {
				cl.err = err
				return
			}
			<-end
			cl.got, cl.err = c.until(`end`)
		}()
	}
	opened.Wait()
	close(connected)
	<-pubDone
	if pubErr != nil {
		t.Fatal(pubErr)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	stored()
	e.publish(t, "room.end", "", "end")
	close(end)
	read.Wait()

	// What the stream holds: the truth each client is checked against.
	var history []natsbus.Message
	err = e.bus.Replay(t.Context(), []string{"room.*", "hall.never"}, 0, uint64(published+1), func(m natsbus.Message) error {
		history = append(history, m)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, cl := range cs {
		if cl.err == nil {
			cl.err = checkLatest(e.bus.Epoch(), history, cl.got, cl.envelope, cl.lower, cl.upper)
		}
		if cl.err != nil {
			t.Fatalf("client (envelope %v, started in [%d, %d]): %v", cl.envelope, cl.lower, cl.upper, cl.err)
		}
	}
	t.Logf("%d clients, started between %d and %d, checked against %d events of their topics",
		clients, cs[0].lower, cs[clients-1].upper, len(history))
}

// until collects the events up to the one whose data (or enveloped data) is data, and
// may be called from any goroutine.
func (c *sseClient) until(data string) ([]sseformat.Event, error) {
	var got []sseformat.Event
	deadline := time.After(waitFor)
	for {
		select {
		case ev, ok := <-c.events:
			if !ok {
				return got, fmt.Errorf("stream ended after %d events: %v", len(got), <-c.done)
			}
			got = append(got, ev)
			var env envelope
			if ev.Data == data || json.Unmarshal([]byte(ev.Data), &env) == nil && env.Data == data {
				return got, nil
			}
		case <-deadline:
			return got, fmt.Errorf("no event %q in time, after %d events", data, len(got))
		}
	}
}

// checkLatest checks that got is, for some start P in [lower, upper], the newest event of
// each topic up to P, then every event after P, as history holds them. A topic whose newest
// event up to P is not among the first may be left out only if it has events after P.
func checkLatest(epoch uint64, history []natsbus.Message, got []sseformat.Event, enveloped bool, lower, upper uint64) error {
	bySeq := map[uint64]natsbus.Message{}
	for _, m := range history {
		bySeq[m.Seq] = m
	}
	seqs := make([]uint64, len(got))
	for i, ev := range got {
		p, err := parseID(ev.ID)
		if err != nil || p.epoch != epoch {
			return fmt.Errorf("event %d: id %q", i, ev.ID)
		}
		m, ok := bySeq[p.seq]
		if !ok {
			return fmt.Errorf("event %d: seq %d is not an event of the stream's topics", i, p.seq)
		}
		topic, data := m.Topic, ev.Data
		if enveloped {
			var env envelope
			if err := json.Unmarshal([]byte(ev.Data), &env); err != nil {
				return fmt.Errorf("event %d: not an envelope: %q", i, ev.Data)
			}
			topic, data = env.Topic, env.Data
		}
		if topic != m.Topic || data != string(m.Data) {
			return fmt.Errorf("event %d (seq %d): topic %q data %q, want %q %q", i, p.seq, topic, data, m.Topic, m.Data)
		}
		if i > 0 && p.seq <= seqs[i-1] {
			return fmt.Errorf("event %d: seq %d after %d", i, p.seq, seqs[i-1])
		}
		seqs[i] = p.seq
	}
	// The events after the start are a tail of the history: try each.
	for tail := 0; tail <= min(len(seqs), len(history)); tail++ {
		if tail > 0 && seqs[len(seqs)-tail] != history[len(history)-tail].Seq {
			break
		}
		start := uint64(0)
		if tail < len(history) {
			start = history[len(history)-tail-1].Seq
		}
		// The stream started at P in [lower, upper], with start <= P < next.
		next := uint64(math.MaxUint64)
		if tail > 0 {
			next = history[len(history)-tail].Seq
		}
		if start > upper || next <= lower {
			continue
		}
		if newestUpTo(history, start, seqs[:len(seqs)-tail]) {
			return nil
		}
	}
	return fmt.Errorf("not the newest events then the later ones: got %v", seqs)
}

// newestUpTo reports whether first is the newest event up to start of each topic of
// history, except topics that have events after start.
func newestUpTo(history []natsbus.Message, start uint64, first []uint64) bool {
	newest := map[string]uint64{}
	changed := map[string]bool{}
	for _, m := range history {
		if m.Seq <= start {
			newest[m.Topic] = m.Seq
		} else {
			changed[m.Topic] = true
		}
	}
	sent := map[uint64]bool{}
	for _, s := range first {
		sent[s] = true
	}
	n := 0
	for topic, seq := range newest {
		switch {
		case sent[seq]:
			n++
		case !changed[topic]:
			return false // a topic left out
		}
	}
	return n == len(first) // nothing else
}

// postEvent publishes over HTTP, and may be called from any goroutine.
func postEvent(ctx context.Context, base, topic, data string) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/publish/"+topic, strings.NewReader(data))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("publish %s: status %d", topic, resp.StatusCode)
	}
	return nil
}

// TestStreamLatestResume: a resume position wins over latest=true, so that a reconnecting
// client continues exactly.
func TestStreamLatestResume(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, nil, nil)
	// Every event of topics a.*, in order: a.quiet's first, then 20 over a.0 to a.3.
	ids := []string{e.publish(t, "a.quiet", "", "quiet")}
	for i := 0; i < 20; i++ {
		ids = append(ids, e.publish(t, fmt.Sprint("a.", i%4), "", fmt.Sprint(i)))
	}
	// Each case ends with a live event on a.live, the newest of a.live thereafter.
	newest := func() []string {
		want := append([]string{ids[0]}, ids[17:21]...)
		if len(ids) > 21 {
			want = append(want, ids[len(ids)-1])
		}
		return want
	}
	tests := []struct {
		name, query, lastID string
		want                func() []string
	}{
		{"latest", "topic=a.*&latest=true", "", newest},
		{"latest=1", "topic=a.*&latest=1", "", newest},
		{"header", "topic=a.*&latest=true", ids[9], func() []string { return ids[10:] }},
		{"query", "topic=a.*&latest=true&last_event_id=" + ids[5], "", func() []string { return ids[6:] }},
		{"header wins", "topic=a.*&latest=true&last_event_id=" + ids[5], ids[12], func() []string { return ids[13:] }},
		{"earliest", "topic=a.*&latest=true&last_event_id=earliest", "", func() []string { return ids }},
		{"latest=false", "topic=a.*&latest=false", "", func() []string { return nil }},
		{"latest=0", "topic=a.*&latest=0", "", func() []string { return nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := e.subscribe(t, tt.query, tt.lastID)
			want := tt.want()
			for _, id := range want {
				if got := c.next(t); got.ID != id {
					t.Fatalf("got %s %q, want %s", got.ID, got.Data, id)
				}
			}
			// Published once the stream has sent what it had: a topic that changes while
			// a stream starts may arrive with its new event in place of its newest.
			live := e.publish(t, "a.live", "", "live")
			ids = append(ids, live)
			if got := c.next(t); got.ID != live {
				t.Fatalf("got %s %q, want the live event %s", got.ID, got.Data, live)
			}
		})
	}
}

// TestTokenExpiredBeforeLatest: a stream whose token expires before the first of the
// newest events gives the client no position, so that it reconnects as it first did.
func TestTokenExpiredBeforeLatest(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, nil, nil)
	rec := httptest.NewRecorder()
	c, _ := gin.CreateTestContext(rec)
	w := newStreamWriter(c.Writer, time.Second, e.gw.metrics)
	w.last, w.unplaced = 42, true
	if err := e.gw.writeTokenExpired(w); err != nil {
		t.Fatal(err)
	}
	ev, err := sseformat.NewDecoder(strings.NewReader(rec.Body.String())).Next()
	if err != nil {
		t.Fatal(err)
	}
	var data tokenExpired
	if ev.Type != TokenExpiredEventType || ev.ID != "" || json.Unmarshal([]byte(ev.Data), &data) != nil || data.LastEventID != "" {
		t.Fatalf("got %+v, want token_expired with no id", ev)
	}
}
