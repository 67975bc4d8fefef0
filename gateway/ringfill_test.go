package gateway

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/natsse/natsse/natsbus"
)

// restart closes e's gateway and starts another on the same bus, as a restarted process
// would find the stream; set changes its options when it is not nil.
func (e *testEnv) restart(t *testing.T, set func(*Options)) *testEnv {
	t.Helper()
	e.gw.Close()
	opts := DefaultOptions()
	if set != nil {
		set(&opts)
	}
	opts.Bus = e.bus
	gw, err := New(opts)
	if err != nil {
		t.Fatalf("gateway.New: %v", err)
	}
	srv := httptest.NewServer(gw.Handler())
	t.Cleanup(func() { gw.Close(); srv.Close() })
	return &testEnv{bus: e.bus, gw: gw, srv: srv}
}

// TestRingFilledAtStart: a gateway starts with the stream's most recent events in its ring
// (those the limits kept), so that clients resuming right after a restart catch up from
// memory, exactly — with the gap the limits made, and then live events — without a read
// of the stream each. With a ring too small for an id, the stream fills in.
func TestRingFilledAtStart(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name         string
		recent       int
		fromTheStore bool // the ring does not reach back to every id resumed from
	}{
		{"ring holds them", 4096, false},
		{"ring too small", 5, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newTestEnv(t, nil, func(o *natsbus.Options) { o.ClientAddr = "127.0.0.1:0"; o.MaxMsgs = 20 })
			var ids []string // the stream keeps the last 20: ids[10:]
			for i := range 30 {
				ids = append(ids, e.publish(t, []string{"f.a", "f.b"}[i%2], "", fmt.Sprint(i)))
			}
			r := e.restart(t, func(o *Options) { o.RecentEvents = tc.recent })
			replays := countRequests(t, e.bus.ClientURL(), "$JS.API.CONSUMER.CREATE.>") // one per read of the stream

			// check resumes a stream of f.a from lastID and expects, after the gap notice
			// gap (if not ""), the f.a events from ids[from] on.
			check := func(lastID, gap string, from int) *sseClient {
				t.Helper()
				c := r.subscribe(t, "topic=f.a", lastID)
				if gap != "" {
					if ev := c.next(t); ev.Type != GapEventType || !strings.Contains(ev.Data, `"reason":"`+gap+`"`) {
						t.Fatalf("resume from %s: %+v, want a %s gap", lastID, ev, gap)
					}
				}
				for i := from; i < 30; i += 2 {
					if ev := c.next(t); ev.ID != ids[i] || ev.Data != fmt.Sprint(i) {
						t.Fatalf("resume from %s: %+v, want %s", lastID, ev, ids[i])
					}
				}
				return c
			}
			check(ids[14], "", 16).close()
			check(ids[9], "", 10).close() // just before the oldest stored event
			c := check(ids[0], "expired", 10)
			if n := replays.Load(); (n > 0) != tc.fromTheStore {
				t.Errorf("%d reads of the stream for resumes after a restart; want some: %v", n, tc.fromTheStore)
			}
			live := r.publish(t, "f.a", "", "live")
			if ev := c.next(t); ev.ID != live {
				t.Fatalf("after catching up: %+v, want the live event %s", ev, live)
			}
		})
	}
}
