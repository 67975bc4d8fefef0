package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/natsse/natsse/natsbus"
)

func TestStreamResponse(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, func(o *Options) { o.Retry = 4500 * time.Millisecond; o.KeepAlive = time.Second }, nil)
	resp, err := http.Get(e.srv.URL + "/events?topic=a")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	for k, want := range map[string]string{
		"Content-Type":      "text/event-stream; charset=utf-8",
		"Cache-Control":     "no-cache",
		"X-Accel-Buffering": "no",
	} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	if resp.ContentLength != -1 {
		t.Errorf("Content-Length %d, want none", resp.ContentLength)
	}
	r := bufio.NewReader(resp.Body)
	var lines []string
	for len(lines) < 3 {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, line)
	}
	// No blank line after the retry hint: it would end a block without data, which some
	// clients dispatch as an empty message.
	want := []string{"retry: 4500\n", ": ping\n", ": ping\n"}
	if fmt.Sprint(lines) != fmt.Sprint(want) {
		t.Fatalf("stream began %q, want %q", lines, want)
	}
}

func TestPublishDelivery(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, nil, func(o *natsbus.Options) { o.ClientAddr = "127.0.0.1:0" })
	exact := e.subscribe(t, "topic=orders.eu", "")
	star := e.subscribe(t, "topic=orders.*", "")
	tail := e.subscribe(t, "topic=orders.>&topic=orders.eu", "") // overlapping filters: once each
	multi := e.subscribe(t, "topic=orders.eu&topic=users&envelope=true", "")

	id1 := e.publish(t, "orders.eu", "created", "line1\nline2")
	id2 := e.publish(t, "orders.us", "", "")
	id3 := e.publish(t, "orders.eu.deep", "", "deep")
	// A NATS client publishing on the subject, with the type header.
	nc, err := nats.Connect(e.bus.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	m := nats.NewMsg("sse.users")
	m.Header.Set("Sse-Event", "joined")
	m.Data = []byte(`{"name":"ana"}`)
	if err := nc.PublishMsg(m); err != nil {
		t.Fatal(err)
	}
	// The envelope names each event's topic.
	var env envelope
	got := multi.next(t)
	if json.Unmarshal([]byte(got.Data), &env) != nil || env != (envelope{Topic: "orders.eu", Type: "created", Data: "line1\nline2"}) || got.ID != id1 || got.Type != "created" {
		t.Fatalf("envelope event %+v", got)
	}
	got = multi.next(t)
	if json.Unmarshal([]byte(got.Data), &env) != nil || env != (envelope{Topic: "users", Type: "joined", Data: `{"name":"ana"}`}) || got.Type != "joined" {
		t.Fatalf("envelope event %+v", got)
	}
	id5 := e.publish(t, "orders.eu", "", "last")

	type ev struct{ id, typ, data string }
	expect := func(c *sseClient, want ...ev) {
		t.Helper()
		for _, w := range want {
			got := c.next(t)
			if got.ID != w.id || got.Type != w.typ || got.Data != w.data {
				t.Fatalf("got {%s %q %q}, want {%s %q %q}", got.ID, got.Type, got.Data, w.id, w.typ, w.data)
			}
		}
	}
	expect(exact, ev{id1, "created", "line1\nline2"}, ev{id5, "", "last"})
	expect(star, ev{id1, "created", "line1\nline2"}, ev{id2, "", ""}, ev{id5, "", "last"})
	expect(tail, ev{id1, "created", "line1\nline2"}, ev{id2, "", ""}, ev{id3, "", "deep"}, ev{id5, "", "last"})

}

func TestResume(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		recent int
	}{{"from memory", 4096}, {"from the store", 0}, {"ring smaller than the gap", 5}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newTestEnv(t, func(o *Options) { o.RecentEvents = tc.recent }, nil)
			var ids []string
			for i := 0; i < 30; i++ {
				topic := []string{"a", "b"}[i%2]
				ids = append(ids, e.publish(t, topic, "", fmt.Sprint(i)))
			}
			// Resume after event 4 (topic a): expect a's events 6, 8, … then live.
			c := e.subscribe(t, "topic=a", ids[4])
			for i := 6; i < 30; i += 2 {
				if got := c.next(t); got.ID != ids[i] || got.Data != fmt.Sprint(i) {
					t.Fatalf("got %s %q, want %s %q", got.ID, got.Data, ids[i], fmt.Sprint(i))
				}
			}
			live := e.publish(t, "a", "", "live")
			if got := c.next(t); got.ID != live {
				t.Fatalf("got %s, want live %s", got.ID, live)
			}
			// The whole history, by query parameter.
			all := e.subscribe(t, "topic=b&last_event_id=earliest", "")
			for i := 1; i < 30; i += 2 {
				if got := all.next(t); got.ID != ids[i] {
					t.Fatalf("earliest: got %s, want %s", got.ID, ids[i])
				}
			}
		})
	}
}

func TestResumeHeaderWinsOverQuery(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, nil, nil)
	id1 := e.publish(t, "a", "", "1")
	id2 := e.publish(t, "a", "", "2")
	id3 := e.publish(t, "a", "", "3")
	c := e.subscribe(t, "topic=a&last_event_id="+id1, id2)
	if got := c.next(t); got.ID != id3 {
		t.Fatalf("got %s, want %s (after the header's id)", got.ID, id3)
	}
	q := e.subscribe(t, "topic=a&last_event_id="+id1, "")
	if got := q.next(t); got.ID != id2 {
		t.Fatalf("got %s, want %s (after the query's id)", got.ID, id2)
	}
}

// TestResumeWhilePublishing reconnects a client over and over while events keep coming,
// and checks that it receives every event of its topic exactly once, in order. The
// publisher waits at checkpoints until the client has reconnected, so that some
// reconnections happen while publishing is going on, however fast it is.
func TestResumeWhilePublishing(t *testing.T) {
	t.Parallel()
	for _, recent := range []int{0, 64} {
		t.Run(fmt.Sprintf("recent=%d", recent), func(t *testing.T) {
			t.Parallel()
			e := newTestEnv(t, func(o *Options) { o.RecentEvents = recent }, nil)
			const total = 1500
			var (
				mu   sync.Mutex
				want []string
			)
			pubDone := make(chan struct{})
			checkpoints := []int{total / 4, total / 2, 3 * total / 4}
			reconnect := make(chan chan struct{}) // the publisher's request; closed once reconnected
			go func() {
				defer close(pubDone)
				for i := 0; i < total; i++ {
					if slices.Contains(checkpoints, i) {
						reconnected := make(chan struct{})
						select {
						case reconnect <- reconnected:
						case <-t.Context().Done():
							return
						}
						select {
						case <-reconnected:
						case <-t.Context().Done():
							return
						}
					}
					topic := []string{"x.1", "x.2", "y"}[i%3]
					res, err := e.bus.Publish(context.Background(), natsbus.Publication{Topic: topic, Data: []byte(fmt.Sprint(i))})
					if err != nil {
						t.Error(err)
						return
					}
					if topic != "y" {
						mu.Lock()
						want = append(want, position{e.bus.Epoch(), res.Seq}.String())
						mu.Unlock()
					}
				}
			}()
			var got []string
			last := ""
			live := 0                     // reconnections while publishing was going on
			var reconnected chan struct{} // the publisher waits for a reconnection
			for round := 0; ; round++ {
				// The first request starts from the beginning; later ones resume with the
				// header, which wins over the query parameter.
				c := e.subscribe(t, "topic=x.*&last_event_id=earliest", last)
				select {
				case <-pubDone:
				default:
					if round > 0 {
						live++ // the stream is established and publishing is not over
					}
				}
				if reconnected != nil {
					close(reconnected)
					reconnected = nil
				}
				for n := 0; n < 37; n++ {
					select {
					case ev, ok := <-c.events:
						if !ok {
							t.Fatalf("stream ended after %q: %v", last, <-c.done)
						}
						got = append(got, ev.ID)
						last = ev.ID
						continue
					case reconnected = <-reconnect:
					case <-pubDone:
					}
					break
				}
				c.close()
				select {
				case <-pubDone:
				default:
					continue
				}
				// Publishing is over: one last resume must bring the rest.
				mu.Lock()
				n := len(want)
				mu.Unlock()
				c = e.subscribe(t, "topic=x.*&last_event_id=earliest", last)
				for last != want[n-1] {
					ev := c.next(t)
					got = append(got, ev.ID)
					last = ev.ID
				}
				break
			}
			if live < len(checkpoints) {
				t.Errorf("%d reconnections while publishing, want at least %d", live, len(checkpoints))
			}
			mu.Lock()
			defer mu.Unlock()
			if strings.Join(got, ",") != strings.Join(want, ",") {
				i := firstDiff(got, want)
				t.Fatalf("received %d events, want %d; first difference at %d: got %v, want %v", len(got), len(want), i, got[max(i-2, 0):min(i+3, len(got))], want[max(i-2, 0):min(i+3, len(want))])
			}
		})
	}
}

func firstDiff(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func TestGapEvents(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, func(o *Options) { o.RecentEvents = 0 }, func(o *natsbus.Options) { o.MaxMsgs = 5 })
	var ids []string
	for i := 0; i < 12; i++ {
		ids = append(ids, e.publish(t, "a", "", fmt.Sprint(i)))
	}
	epoch := e.bus.Epoch()
	tests := []struct {
		name, lastID, reason string
		next                 string // the id of the first event after the gap notice
	}{
		{"expired", ids[0], "expired", ids[7]},
		{"stream reset", position{epoch + 1, 3}.String(), "stream_reset", ids[7]},
		{"ahead", position{epoch, 999}.String(), "ahead", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := e.subscribe(t, "topic=a", tt.lastID)
			g := c.next(t)
			var body gap
			if g.Type != GapEventType || json.Unmarshal([]byte(g.Data), &body) != nil || body.Reason != tt.reason || body.LastEventID != tt.lastID || body.ResumeID != g.ID {
				t.Fatalf("gap event %+v", g)
			}
			if tt.next == "" {
				tt.next = e.publish(t, "a", "", "new")
			}
			if got := c.next(t); got.ID != tt.next {
				t.Fatalf("after the gap: %s, want %s", got.ID, tt.next)
			}
		})
	}
}

func TestSanitizesNATSMessages(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, nil, func(o *natsbus.Options) { o.ClientAddr = "127.0.0.1:0" })
	c := e.subscribe(t, "topic=raw", "")
	nc, err := nats.Connect(e.bus.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	m := nats.NewMsg("sse.raw")
	m.Data = []byte("bad \xff byte")
	if err := nc.PublishMsg(m); err != nil {
		t.Fatal(err)
	}
	spoof := nats.NewMsg("sse.raw")
	spoof.Header.Set("Sse-Event", GapEventType)
	spoof.Data = []byte("not a gap notice")
	if err := nc.PublishMsg(spoof); err != nil {
		t.Fatal(err)
	}
	if err := nc.Publish("sse.raw", []byte("fine")); err != nil {
		t.Fatal(err)
	}
	if got := c.next(t); got.Data != "bad \uFFFD byte" {
		t.Fatalf("got %q", got.Data)
	}
	if got := c.next(t); got.Type != "" || got.Data != "not a gap notice" {
		t.Fatalf("a published gap type: %+v, want it sent as a plain message", got)
	}
	if got := c.next(t); got.Data != "fine" {
		t.Fatalf("got %q", got.Data)
	}
	if n := e.gw.Stats().Sanitized; n != 2 {
		t.Fatalf("sanitized %d, want 2", n)
	}
}

func TestCloseEndsStreams(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, nil, nil)
	var clients []*sseClient
	for i := 0; i < 21; i++ {
		clients = append(clients, e.subscribe(t, fmt.Sprintf("topic=t%d", i), ""))
	}
	eventually(t, func() bool { return e.gw.Stats().Connections == 21 }, func() string { return "streams did not join" })
	done := make(chan struct{})
	go func() { e.gw.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(waitFor):
		t.Fatal("Close did not return")
	}
	for _, c := range clients {
		c.ended(t)
	}
	// A stream opened now is told to come back later.
	resp, err := http.Get(e.srv.URL + "/events?topic=a")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := bufio.NewReader(resp.Body)
	var body strings.Builder
	for {
		line, err := r.ReadString('\n')
		body.WriteString(line)
		if err != nil {
			break
		}
	}
	if resp.StatusCode != http.StatusOK || !strings.Contains(body.String(), "retry: ") ||
		strings.Contains(body.String(), "\n\n") {
		t.Fatalf("after Close: %d %q, want 200 with a retry hint and no blank line", resp.StatusCode, body.String())
	}
}

func TestNoGoroutineLeaks(t *testing.T) {
	// Not parallel: it counts the process's goroutines.
	before := runtime.NumGoroutine()
	func() {
		dir := t.TempDir()
		bopts := natsbus.DefaultOptions()
		bopts.StoreDir = dir
		bus, err := natsbus.New(bopts)
		if err != nil {
			t.Fatal(err)
		}
		opts := DefaultOptions()
		opts.Bus = bus
		gw, err := New(opts)
		if err != nil {
			t.Fatal(err)
		}
		e := &testEnv{bus: bus, gw: gw}
		e.srv = httptest.NewServer(gw.Handler())
		for i := 0; i < 10; i++ {
			c := e.subscribe(t, "topic=a&latest="+fmt.Sprint(i%2), "") // every other with the newest first
			e.publish(t, "a", "", "x")
			c.next(t)
			c.close()
		}
		e.close()
	}()
	http.DefaultClient.CloseIdleConnections()
	checkGoroutines(t, before)
}
