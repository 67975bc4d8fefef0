package e2e

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// streamInfo reads the configuration and state of the stream name over the gateway's NATS
// port.
func streamInfo(tb testing.TB, js jetstream.JetStream, name string) *jetstream.StreamInfo {
	tb.Helper()
	s, err := js.Stream(tb.Context(), name)
	if err != nil {
		tb.Fatalf("stream %s: %v", name, err)
	}
	info, err := s.Info(tb.Context())
	if err != nil {
		tb.Fatalf("stream %s info: %v", name, err)
	}
	return info
}

// TestStreamName: GATEWAY_STREAM names the JetStream stream that captures the topics and
// stores the events; no stream of the default name is made.
func TestStreamName(t *testing.T) {
	t.Parallel()
	const name = "ORDERS_E2E"
	g := startGateway(t, "GATEWAY_STREAM="+name)
	_, js := g.natsConn(t)
	res := g.publish(t, "orders.eu", "created", `{"order":42}`)

	var names []string
	for n := range js.StreamNames(t.Context()).Name() {
		names = append(names, n)
	}
	if len(names) != 1 || names[0] != name {
		t.Errorf("streams %v, want only %s", names, name)
	}
	if _, err := js.Stream(t.Context(), streamName); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Errorf("stream %s: %v, want %v", streamName, err, jetstream.ErrStreamNotFound)
	}
	info := streamInfo(t, js, name)
	if subj := info.Config.Subjects; len(subj) != 1 || subj[0] != "sse.>" {
		t.Errorf("stream %s captures %v, want [sse.>]", name, subj)
	}
	stored := readStreamNamed(t, js, name)
	want := storedMsg{seq: res.Seq, topic: "orders.eu", typ: "created", data: `{"order":42}`}
	if len(stored) != 1 || stored[0] != want {
		t.Errorf("stream %s holds %+v, want %+v", name, stored, want)
	}
}

// TestHistoryMaxBytes: GATEWAY_HISTORY_MAX_BYTES is the stream's byte limit; once events
// exceed it the oldest are removed, and a resume from the first event starts with a gap
// naming what was removed, then every event still stored.
func TestHistoryMaxBytes(t *testing.T) {
	t.Parallel()
	const (
		maxBytes = 64 << 10
		events   = 40
		size     = 4000
	)
	g := startGateway(t, fmt.Sprintf("GATEWAY_HISTORY_MAX_BYTES=%d", maxBytes))
	_, js := g.natsConn(t)
	var ids []string
	data := func(i int) string { return fmt.Sprintf("%04d:", i) + strings.Repeat("b", size-5) }
	for i := range events {
		ids = append(ids, g.publish(t, "bytes", "", data(i)).ID)
	}

	info := streamInfo(t, js, streamName)
	if info.Config.MaxBytes != maxBytes {
		t.Fatalf("stream MaxBytes %d, want %d", info.Config.MaxBytes, maxBytes)
	}
	first, last := info.State.FirstSeq, info.State.LastSeq
	if info.State.Bytes > maxBytes || first <= 1 || last != events {
		t.Fatalf("stream holds %d bytes, sequences %d to %d: want at most %d bytes, the oldest removed, the last %d",
			info.State.Bytes, first, last, maxBytes, events)
	}
	t.Logf("%d events of %d bytes: the stream keeps %d to %d (%d bytes)", events, size, first, last, info.State.Bytes)

	s := g.subscribeFrom(t, "topic=bytes", ids[0])
	gap := expectGap(t, s, "expired", ids[0])
	if gap.ResumeID != ids[first-2] || gap.LostFromSeq != 2 || gap.LostToSeq != first-1 {
		t.Errorf("gap %+v, want resume_id %s, lost_from_seq 2, lost_to_seq %d", gap, ids[first-2], first-1)
	}
	for seq := first; seq <= last; seq++ {
		if ev := s.next(t); ev.ID != ids[seq-1] || ev.Data != data(int(seq-1)) {
			t.Fatalf("after the gap: %s (%.5q), want %s", ev.ID, ev.Data, ids[seq-1])
		}
	}
}

// TestHistoryMaxAgeZero: GATEWAY_HISTORY_MAX_AGE=0 keeps events forever. A gateway
// restarted with 0 on a stream that had an age limit removes the limit (and keeps the
// duplicate window, which an age limit would bound), and the events stored are all kept.
func TestHistoryMaxAgeZero(t *testing.T) {
	t.Parallel()
	g := startGateway(t, "GATEWAY_HISTORY_MAX_AGE=1h")
	_, js := g.natsConn(t)
	if age := streamInfo(t, js, streamName).Config.MaxAge; age != time.Hour {
		t.Fatalf("stream MaxAge %s with GATEWAY_HISTORY_MAX_AGE=1h", age)
	}
	var ids []string
	for i := range 3 {
		ids = append(ids, g.publish(t, "aged", "", fmt.Sprintf("a%d", i)).ID)
	}

	g = g.restart(t, "GATEWAY_HISTORY_MAX_AGE=0")
	_, js = g.natsConn(t)
	info := streamInfo(t, js, streamName)
	if info.Config.MaxAge != 0 || info.Config.Duplicates != 2*time.Minute {
		t.Errorf("stream MaxAge %s, Duplicates %s with GATEWAY_HISTORY_MAX_AGE=0: want 0 (no limit) and 2m",
			info.Config.MaxAge, info.Config.Duplicates)
	}
	if info.State.Msgs != 3 || info.State.FirstSeq != 1 {
		t.Errorf("stream holds %d events from %d, want the 3 stored from 1", info.State.Msgs, info.State.FirstSeq)
	}
	s := g.subscribe(t, "topic=aged&last_event_id=earliest")
	for i, id := range ids {
		if ev := s.next(t); ev.ID != id || ev.Data != fmt.Sprintf("a%d", i) {
			t.Fatalf("from the earliest: %+v, want %s", ev, id)
		}
	}
}

// TestDuplicateWindowExpires: a publish with the Idempotency-Key of one published less than
// GATEWAY_DUPLICATE_WINDOW ago is a duplicate, not stored again; once the window has passed,
// the same key is stored as a new event.
func TestDuplicateWindowExpires(t *testing.T) {
	t.Parallel()
	const window = 2 * time.Second
	g := startGateway(t, "GATEWAY_DUPLICATE_WINDOW="+window.String())
	_, js := g.natsConn(t)
	if d := streamInfo(t, js, streamName).Config.Duplicates; d != window {
		t.Fatalf("stream duplicate window %s, want %s", d, window)
	}

	began := time.Now()
	first := g.publishKey(t, "dup", "", "first", "k1")
	again := g.publishKey(t, "dup", "", "again", "k1")
	if inside := time.Since(began); inside >= window {
		t.Fatalf("two publishes took %s, not inside the %s window: the machine is too slow for this test", inside, window)
	}
	if first.Duplicate || !again.Duplicate || again.ID != first.ID {
		t.Fatalf("inside the window: %+v then %+v, want the second a duplicate of the first", first, again)
	}

	// Wait out the documented window, then the same key is a new event within a few
	// seconds (NATS forgets ids on a timer).
	<-time.After(time.Until(began.Add(window)))
	deadline := began.Add(3 * window)
	var later publishResult
	for {
		later = g.publishKey(t, "dup", "", "later", "k1")
		if !later.Duplicate {
			break
		}
		if later.ID != first.ID {
			t.Fatalf("a duplicate answered %s, want %s", later.ID, first.ID)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the key was still a duplicate %s after its first publish, with a %s window",
				time.Since(began).Round(time.Millisecond), window)
		}
		<-time.After(50 * time.Millisecond) // polling interval
	}
	t.Logf("the key was new again %s after its first publish", time.Since(began).Round(time.Millisecond))
	if later.Seq <= first.Seq {
		t.Fatalf("after the window: %+v, want a new event after %d", later, first.Seq)
	}
	stored := readStream(t, js)
	if len(stored) != 2 || stored[0].data != "first" || stored[1].data != "later" || stored[1].seq != later.Seq {
		t.Errorf("stream holds %+v, want the first publish and the one after the window", stored)
	}
}
