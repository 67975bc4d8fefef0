package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/natsse/natsse/sseformat"
)

// shutdownLimit is how long a gateway may take to exit after SIGTERM.
const shutdownLimit = 10 * time.Second

// TestShutdown sends SIGTERM to a gateway with open streams: every stream must end
// cleanly and the process must exit 0 within three times README's promise.
func TestShutdown(t *testing.T) {
	t.Parallel()
	g := startGateway(t)
	var streams []*sseStream
	for i := range 5 {
		streams = append(streams, g.subscribe(t, topicQuery(fmt.Sprintf("s.%d", i), "s.all")))
	}
	res := g.publish(t, "s.all", "", "before shutdown")
	for _, s := range streams {
		if ev := s.next(t); ev.ID != res.ID {
			t.Fatalf("got %+v, want %s", ev, res.ID)
		}
	}
	pollUntil(t, eventTimeout, "5 connections in /stats", func() bool { return g.stats(t).Connections == 5 })

	code, took := g.stop(t)
	t.Logf("exited with %d, %s after SIGTERM, with %d open streams", code, took.Round(time.Millisecond), len(streams))
	if code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
	if limit := cpuBound(3 * shutdownPromise); took > limit {
		t.Errorf("took %s to exit, want at most %s", took, limit)
	}
	for i, s := range streams {
		evs, err := s.expectEnd(t, eventTimeout)
		if len(evs) > 0 {
			t.Errorf("stream %d: events after the shutdown began: %+v", i, evs)
		}
		if err != io.EOF {
			t.Errorf("stream %d ended with %v, want a clean end (EOF)", i, err)
		}
	}
	g.waitLog(t, time.Second, `"gateway stopped"`, func(e logEntry) bool { return e.msg() == "gateway stopped" })
}

// TestShutdownInterrupt checks that SIGINT (Ctrl-C) stops a gateway like SIGTERM.
func TestShutdownInterrupt(t *testing.T) {
	t.Parallel()
	g := startGateway(t)
	s := g.subscribe(t, "topic=x")
	g.shutDownWith(t, syscall.SIGINT, "SIGINT")
	if _, err := s.expectEnd(t, eventTimeout); err != io.EOF {
		t.Errorf("stream ended with %v, want EOF", err)
	}
}

// shutDownWith sends sig, waits up to shutdownLimit for the process to exit (failing the
// test if it does not), checks that it exited 0 and returns how long it took. after says
// what the process exited after, for the messages.
func (g *gatewayProc) shutDownWith(t *testing.T, sig os.Signal, after string) time.Duration {
	t.Helper()
	began := time.Now()
	g.signal(t, sig)
	code := g.waitExit(t, shutdownLimit)
	took := time.Since(began)
	t.Logf("exited with %d, %s after %s", code, took.Round(time.Millisecond), after)
	if code != 0 {
		t.Errorf("exit code %d after %s, want 0", code, after)
	}
	return took
}

// TestRestart stops a gateway and starts another on the same data directory: ids stay
// valid and a client resuming from before the restart gets every event after its id,
// whether published before the stop or after the restart.
func TestRestart(t *testing.T) {
	t.Parallel()
	g := startGateway(t)
	var ids []string
	for i := range 10 {
		ids = append(ids, g.publish(t, "r", "t", fmt.Sprintf("r%d", i)).ID)
	}
	// A client reads five events, then the gateway goes away.
	s := g.subscribe(t, "topic=r&last_event_id=earliest")
	for i := range 5 {
		if ev := s.next(t); ev.ID != ids[i] {
			t.Fatalf("before restart: event %d is %+v, want %s", i, ev, ids[i])
		}
	}
	live := g.subscribeFrom(t, "topic=r", ids[9])
	if code, took := g.stop(t); code != 0 {
		t.Fatalf("exit code %d", code)
	} else {
		t.Logf("stopped in %s", took.Round(time.Millisecond))
	}
	s.close()
	live.close()

	g = g.restart(t)
	started := g.log.entries(func(e logEntry) bool { return e.msg() == "gateway started" })
	if len(started) != 1 || started[0]["last_seq"] != float64(10) {
		t.Errorf("started line after restart: %v, want last_seq 10", started)
	}
	for i := 10; i < 15; i++ {
		res := g.publish(t, "r", "t", fmt.Sprintf("r%d", i))
		if want := formatID(epochOf(t, ids[0]), uint64(i+1)); res.ID != want {
			t.Errorf("after restart: id %s, want %s (same epoch, next sequence)", res.ID, want)
		}
		ids = append(ids, res.ID)
	}
	var want []sseformat.Event // every event of topic r, markers included
	for i, id := range ids {
		want = append(want, sseformat.Event{ID: id, Type: "t", Data: fmt.Sprintf("r%d", i)})
	}
	// check expects the events from index from on, and then nothing else: the marker it
	// publishes is the next event, and one more for the streams of the checks after it.
	check := func(t *testing.T, s *sseStream, from int) {
		t.Helper()
		for i := from; i < len(want); i++ {
			if ev := s.next(t); ev != want[i] {
				t.Fatalf("event %d: got %+v, want %+v", i, ev, want[i])
			}
		}
		want = append(want, g.expectNothingElse(t, "r", s))
	}
	t.Run("resume from before the stop", func(t *testing.T) {
		check(t, g.subscribeFrom(t, "topic=r", ids[4]), 5)
	})
	t.Run("resume from the last event before the stop", func(t *testing.T) {
		check(t, g.subscribeFrom(t, "topic=r", ids[9]), 10)
	})
	t.Run("resume with the query parameter", func(t *testing.T) {
		check(t, g.subscribe(t, "topic=r&last_event_id="+ids[2]), 3)
	})
	t.Run("earliest", func(t *testing.T) {
		check(t, g.subscribe(t, "topic=r&last_event_id=earliest"), 0)
	})
	t.Run("idempotency across restart", func(t *testing.T) {
		a := g.publishKey(t, "r.k", "", "once", "restart-key")
		g = g.restart(t)
		b := g.publishKey(t, "r.k", "", "once", "restart-key")
		if b.ID != a.ID || !b.Duplicate {
			t.Errorf("retry after restart: %+v, want a duplicate of %+v", b, a)
		}
	})
}

// gapNotice is the data of a "gap" event.
type gapNotice struct {
	Reason      string `json:"reason"`
	Message     string `json:"message"`
	LastEventID string `json:"last_event_id"`
	ResumeID    string `json:"resume_id"`
	LostFromSeq uint64 `json:"lost_from_seq"`
	LostToSeq   uint64 `json:"lost_to_seq"`
}

// expectGap reads the next event and checks that it is a gap notice.
func expectGap(tb testing.TB, s *sseStream, reason, lastID string) gapNotice {
	tb.Helper()
	ev := s.next(tb)
	if ev.Type != "gap" {
		tb.Fatalf("first event %+v, want a gap event", ev)
	}
	var gap gapNotice
	if err := json.Unmarshal([]byte(ev.Data), &gap); err != nil {
		tb.Fatalf("gap data %q: %v", ev.Data, err)
	}
	if gap.Reason != reason || gap.Message == "" || gap.LastEventID != lastID || gap.ResumeID != ev.ID {
		tb.Errorf("gap %+v with id %s, want reason %q, a message, last_event_id %q and resume_id = the event's id",
			gap, ev.ID, reason, lastID)
	}
	return gap
}

// TestGap checks the gap notice a stream starts with when it cannot continue exactly
// after the client's id: the data dir was wiped (stream_reset), retention removed the
// events (expired), or the id is beyond the end of the stream (ahead).
func TestGap(t *testing.T) {
	t.Parallel()
	t.Run("stream reset", func(t *testing.T) {
		t.Parallel()
		g := startGateway(t)
		var old []string
		for i := range 3 {
			old = append(old, g.publish(t, "w", "", fmt.Sprintf("old%d", i)).ID)
		}
		if code, _ := g.stop(t); code != 0 {
			t.Fatalf("exit code %d", code)
		}
		if err := os.RemoveAll(g.dataDir); err != nil {
			t.Fatal(err)
		}
		g = g.restart(t)
		var fresh []string
		for i := range 2 {
			fresh = append(fresh, g.publish(t, "w", "", fmt.Sprintf("new%d", i)).ID)
		}
		if epochOf(t, fresh[0]) == epochOf(t, old[0]) {
			t.Fatalf("ids %s and %s: a wiped stream kept its epoch", old[0], fresh[0])
		}
		for _, lastID := range []string{old[1], old[2]} {
			s := g.subscribeFrom(t, "topic=w", lastID)
			gap := expectGap(t, s, "stream_reset", lastID)
			if want := formatID(epochOf(t, fresh[0]), 0); gap.ResumeID != want {
				t.Errorf("resume_id %s, want %s", gap.ResumeID, want)
			}
			for i, id := range fresh {
				if ev := s.next(t); ev.ID != id || ev.Data != fmt.Sprintf("new%d", i) {
					t.Errorf("after the gap: %+v, want %s", ev, id)
				}
			}
			// The client resumes from the gap's id like from any other.
			r := g.subscribeFrom(t, "topic=w", gap.ResumeID)
			if ev := r.next(t); ev.ID != fresh[0] {
				t.Errorf("resume from the gap's id: %+v, want %s", ev, fresh[0])
			}
		}
	})
	forSettings(t, []setting{
		{name: "expired", env: []string{"GATEWAY_HISTORY_MAX_MSGS=10"}},
		{name: "expired without ring", env: []string{"GATEWAY_HISTORY_MAX_MSGS=10", "GATEWAY_RECENT_EVENTS=0"}},
		{name: "expired after restart", env: []string{"GATEWAY_HISTORY_MAX_MSGS=10"}},
	}, func(t *testing.T, tc setting) {
		g := startGateway(t, tc.env...)
		var ids []string
		for i := range 50 {
			ids = append(ids, g.publish(t, "x", "", fmt.Sprintf("x%d", i)).ID)
		}
		if strings.HasSuffix(tc.name, "restart") {
			g = g.restart(t)
		}
		s := g.subscribeFrom(t, "topic=x", ids[0])
		gap := expectGap(t, s, "expired", ids[0])
		if gap.ResumeID != ids[39] || gap.LostFromSeq != 2 || gap.LostToSeq != 40 {
			t.Errorf("gap %+v, want resume_id %s, lost_from_seq 2, lost_to_seq 40", gap, ids[39])
		}
		for i := 40; i < 50; i++ {
			if ev := s.next(t); ev.ID != ids[i] || ev.Data != fmt.Sprintf("x%d", i) {
				t.Fatalf("after the gap: %+v, want %s", ev, ids[i])
			}
		}
		g.expectNothingElse(t, "x", s)
		// From the oldest stored event's predecessor, there is no gap.
		r := g.subscribeFrom(t, "topic=x", ids[39])
		if ev := r.next(t); ev.ID != ids[40] {
			t.Errorf("resume from %s: %+v, want %s", ids[39], ev, ids[40])
		}
	})
	t.Run("expired by age", func(t *testing.T) {
		t.Parallel()
		g := startGateway(t, "GATEWAY_HISTORY_MAX_AGE=1s")
		var ids []string
		for i := range 3 {
			ids = append(ids, g.publish(t, "old", "", fmt.Sprintf("o%d", i)).ID)
		}
		// Resume from the first event until the other two have expired too.
		deadline := time.Now().Add(eventTimeout)
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			s := g.subscribeFrom(t, "topic=old", ids[0])
			ev := s.next(t)
			s.close()
			if ev.Type == "gap" {
				var gap gapNotice
				if err := json.Unmarshal([]byte(ev.Data), &gap); err != nil {
					t.Fatalf("gap data %q: %v", ev.Data, err)
				}
				if gap.Reason != "expired" || gap.LastEventID != ids[0] {
					t.Fatalf("gap %+v, want reason expired from %s", gap, ids[0])
				}
				if gap.ResumeID == ids[2] {
					break
				}
			} else if ev.ID != ids[1] {
				t.Fatalf("resume from %s: %+v, want %s or a gap", ids[0], ev, ids[1])
			}
			if time.Now().After(deadline) {
				t.Fatalf("events published with a 1s maximum age still there after %s", eventTimeout)
			}
			<-tick.C
		}
		s := g.subscribeFrom(t, "topic=old", ids[0])
		if gap := expectGap(t, s, "expired", ids[0]); gap.LostFromSeq != 2 || gap.LostToSeq != 3 {
			t.Errorf("gap %+v, want lost_from_seq 2 and lost_to_seq 3", gap)
		}
		res := g.publish(t, "old", "", "new")
		if ev := s.next(t); ev.ID != res.ID {
			t.Errorf("after the gap: %+v, want the new event %s", ev, res.ID)
		}
	})
	t.Run("ahead", func(t *testing.T) {
		t.Parallel()
		g := startGateway(t)
		first := g.publish(t, "y", "", "y0")
		ahead := formatID(epochOf(t, first.ID), 1000)
		s := g.subscribeFrom(t, "topic=y", ahead)
		gap := expectGap(t, s, "ahead", ahead)
		if gap.ResumeID != first.ID {
			t.Errorf("resume_id %s, want %s", gap.ResumeID, first.ID)
		}
		next := g.publish(t, "y", "", "y1")
		if ev := s.next(t); ev.ID != next.ID || ev.Data != "y1" {
			t.Errorf("after the gap: %+v, want %s", ev, next.ID)
		}
	})
}

// TestCrashRestart kills a gateway with SIGKILL while it publishes and serves, then
// starts another on the same data directory: it must start despite the dead process's
// lock file, keep every acknowledged event with its id, and let a client resume.
func TestCrashRestart(t *testing.T) {
	t.Parallel()
	g := startGateway(t)
	nc, js := g.natsConn(t)
	var ids []string
	for i := range 50 {
		if i%2 == 0 {
			ids = append(ids, g.publish(t, "c", "", fmt.Sprintf("c%d", i)).ID)
			continue
		}
		ack, err := js.PublishMsg(t.Context(), natsMsg("c", "", fmt.Sprintf("c%d", i), ""))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, formatID(epochOf(t, ids[0]), ack.Sequence))
	}
	s := g.subscribe(t, "topic=c&last_event_id=earliest")
	got := s.take(t, 20)
	g.kill(t)
	nc.Close()
	// The process is gone before it could end the chunked body: the client sees the
	// connection close (or reset) in the middle of it, never the clean end of a shutdown.
	if _, err := s.expectEnd(t, eventTimeout); !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("stream of a killed gateway ended with %v, want the body cut off (unexpected EOF or connection reset)", err)
	}

	g = g.restart(t)
	for i := 50; i < 60; i++ {
		ids = append(ids, g.publish(t, "c", "", fmt.Sprintf("c%d", i)).ID)
	}
	r := g.subscribeFrom(t, "topic=c", got[len(got)-1].ID)
	for i := 20; i < 60; i++ {
		if ev := r.next(t); ev.ID != ids[i] || ev.Data != fmt.Sprintf("c%d", i) {
			t.Fatalf("after the crash: event %d is %+v, want %s", i, ev, ids[i])
		}
	}
	g.expectNothingElse(t, "c", r)
}

// TestShutdownStuckClient sends SIGTERM while a client has stopped reading its stream
// (its connection's buffers are full, so the gateway's writes to it block). The process
// must still exit 0 within shutdownLimit: GATEWAY_SHUTDOWN_TIMEOUT bounds a graceful
// shutdown, even with a write timeout longer than that, and the stuck stream is aborted
// when it runs out, not before.
func TestShutdownStuckClient(t *testing.T) {
	t.Parallel()
	const grace = 5 * time.Second
	const events = 1500 // 12 MB: more than the kernel buffers, less than the queue
	g := startGateway(t,
		"GATEWAY_BUFFER_SIZE=4096",
		"GATEWAY_WRITE_TIMEOUT=1m",
		"GATEWAY_SHUTDOWN_TIMEOUT="+grace.String(),
	)
	stuck := dialStream(t, g, "/events?topic=big")
	healthy := g.subscribe(t, "topic=big")
	payload := strings.Repeat("x", 8<<10)
	for i := range events {
		g.publish(t, "big", "", payload)
		if i == 0 {
			healthy.next(t)
		}
	}
	healthy.take(t, events-1)
	if s := g.stats(t); s.SlowCut != 0 || s.Connections != 2 {
		t.Fatalf("stats %+v: want 2 connections, none cut off", s)
	}
	g.client.CloseIdleConnections()
	// The stuck stream holds the shutdown until the timeout aborts it: not before, and not
	// much later.
	if took := g.shutDownWith(t, syscall.SIGTERM, "SIGTERM, with a stuck client"); took < grace {
		t.Errorf("exited %s after SIGTERM, before GATEWAY_SHUTDOWN_TIMEOUT (%s) aborted the stuck stream", took.Round(time.Millisecond), grace)
	}
	if aborted := g.log.entries(func(e logEntry) bool { return e.msg() == "shutdown: aborted streams whose clients were not reading" }); len(aborted) != 1 || aborted[0]["streams"] != float64(1) {
		t.Errorf("log lines on the aborted stream: %v, want one with streams=1", aborted)
	}
	if _, err := healthy.expectEnd(t, eventTimeout); err != io.EOF {
		t.Errorf("healthy stream ended with %v, want EOF", err)
	}
	stuck.conn.Close()
}
