package natsbus

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// newPuller creates a consumer of the whole stream and a puller of it, stopped at the end
// of the test.
func newPuller(t *testing.T, b *Bus, opts pullOptions) (jetstream.Consumer, *puller) {
	t.Helper()
	cons, err := b.stream.CreateConsumer(t.Context(), jetstream.ConsumerConfig{AckPolicy: jetstream.AckNonePolicy})
	if err != nil {
		t.Fatal(err)
	}
	p, err := b.pull(cons, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.stop)
	return cons, p
}

// TestPullerDelivers reads a stream through a small window, so that it asks again and
// again, with requests ended by their count and by their size: every message comes once,
// in order, with what its reply subject says; a stored message that looks like a status
// (no data, a Status header) is a message.
func TestPullerDelivers(t *testing.T) {
	t.Parallel()
	b := newTestBus(t)
	var want [][]byte
	store := func(data []byte, header nats.Header) {
		m := nats.NewMsg(b.Subject("a"))
		m.Data, m.Header = data, header
		if _, err := b.js.PublishMsg(t.Context(), m); err != nil {
			t.Fatal(err)
		}
		want = append(want, data)
	}
	for i := 0; i < 100; i++ {
		store([]byte{byte(i)}, nil)
	}
	store(nil, nats.Header{"Status": []string{"100"}, "Description": []string{"Idle Heartbeat"}})
	big := bytes.Repeat([]byte("x"), 512<<10) // four fill a request (2 MiB: twice the largest message)
	for i := 0; i < 10; i++ {
		store(big, nil)
	}
	_, p := newPuller(t, b, pullOptions{window: 16, maxBytes: 1, heartbeat: time.Second, expires: 5 * time.Second})
	for i, data := range want {
		m, md, err := p.next(t.Context())
		if err != nil {
			t.Fatalf("message %d: %v", i+1, err)
		}
		if md.streamSeq != uint64(i+1) || md.consumerSeq != uint64(i+1) || md.pending != uint64(len(want)-i-1) || !bytes.Equal(m.Data, data) {
			t.Fatalf("message %d: %+v, %d bytes", i+1, md, len(m.Data))
		}
		if since := time.Since(md.stored); since < 0 || since > time.Minute {
			t.Fatalf("message %d stored at %s", i+1, md.stored)
		}
	}
}

// TestPullerWaits checks a puller on a quiet consumer: heartbeats and expired requests
// are not messages, and the next message still comes; a consumer that sends nothing at
// all for two heartbeats, or is deleted, is an error.
func TestPullerWaits(t *testing.T) {
	t.Parallel()
	b := newTestBus(t)
	cons, p := newPuller(t, b, pullOptions{window: 4, heartbeat: 250 * time.Millisecond, expires: 600 * time.Millisecond})
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second) // a few expired requests
	_, _, err := p.next(ctx)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("on a quiet consumer: %v, want the wait to end with its context", err)
	}
	publish(t, b, "a", "", "after a while")
	if m, md, err := p.next(t.Context()); err != nil || string(m.Data) != "after a while" || md.consumerSeq != 1 {
		t.Fatalf("after the quiet: %v, %+v", err, md)
	}

	// Requests that something takes and never answers, as a consumer on a node that is
	// gone. (A paused consumer still sends heartbeats.)
	silent, err := b.nc.Subscribe("silent", func(*nats.Msg) {})
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Unsubscribe()
	_, p = newPuller(t, b, pullOptions{window: 4, heartbeat: 250 * time.Millisecond, expires: time.Second})
	p.subject = "silent"
	began := time.Now()
	if _, _, err := p.next(t.Context()); !errors.Is(err, errNoHeartbeat) {
		t.Fatalf("from a silent consumer: %v, want errNoHeartbeat", err)
	}
	if waited := time.Since(began); waited < 500*time.Millisecond {
		t.Fatalf("a silent consumer was given up after %s, less than two heartbeats", waited)
	}

	cons, p = newPuller(t, b, pullOptions{window: 4, heartbeat: time.Second, expires: 5 * time.Second})
	if _, _, err := p.next(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := b.stream.DeleteConsumer(t.Context(), cons.CachedInfo().Name); err != nil {
		t.Fatal(err)
	}
	if _, _, err := p.next(t.Context()); !errors.Is(err, errConsumerDeleted) {
		t.Fatalf("from a deleted consumer: %v, want errConsumerDeleted", err)
	}
}

func TestParseAckReply(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		reply string
		want  ackMeta
		ok    bool
	}{
		{"$JS.ACK.S.C.1.42.7.1700000000000000001.3", ackMeta{42, 7, 3, time.Unix(0, 1700000000000000001)}, true},
		{"$JS.ACK.hub.ACCHASH.S.C.1.42.7.1700000000000000001.3.token", ackMeta{42, 7, 3, time.Unix(0, 1700000000000000001)}, true},
		{"$JS.ACK._.ACCHASH.S.C.1.42.7.5.0", ackMeta{42, 7, 0, time.Unix(0, 5)}, true},
		{"$JS.ACK.S.C.1.42.7.5", ackMeta{}, false},                      // a token short
		{"$JS.ACK.a.b.S.C.1.42.7.5", ackMeta{}, false},                  // ten tokens
		{"$JS.ACK.S.C.1.x.7.5.0", ackMeta{}, false},                     // not a number
		{"$JS.NAK.S.C.1.42.7.5.0", ackMeta{}, false},                    // not an acknowledgement
		{"_INBOX.abc", ackMeta{}, false},                                // a plain reply
		{"", ackMeta{}, false},                                          //
		{"$JS.ACK.S.C.1.-1.7.5.0", ackMeta{}, false},                    // negative
		{"$JS.ACK.S.C.1.42.7.5.18446744073709551616", ackMeta{}, false}, // too large
	} {
		got, ok := parseAckReply(tc.reply)
		if ok != tc.ok || ok && (got.streamSeq != tc.want.streamSeq || got.consumerSeq != tc.want.consumerSeq ||
			got.pending != tc.want.pending || !got.stored.Equal(tc.want.stored)) {
			t.Errorf("parseAckReply(%q) = %+v, %v; want %+v, %v", tc.reply, got, ok, tc.want, tc.ok)
		}
	}
}
