package natsbus

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// testOptions are the default options with a temporary store, changed by each of set.
func testOptions(t testing.TB, set ...func(*Options)) Options {
	o := DefaultOptions()
	o.StoreDir = t.TempDir()
	for _, f := range set {
		f(&o)
	}
	return o
}

// newTestBus starts a Bus with testOptions and closes it at the end of the test.
func newTestBus(t testing.TB, set ...func(*Options)) *Bus {
	t.Helper()
	b, err := New(testOptions(t, set...))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func publish(t testing.TB, b *Bus, topic, typ, data string) uint64 {
	t.Helper()
	res, err := b.Publish(t.Context(), Publication{Topic: topic, Type: typ, Data: []byte(data)})
	if err != nil {
		t.Fatalf("Publish %s: %v", topic, err)
	}
	return res.Seq
}

func TestBusPublishFollow(t *testing.T) {
	t.Parallel()
	b := newTestBus(t, func(o *Options) { o.ClientAddr = "127.0.0.1:0" })
	_, got := follow(t, b, 0)

	publish(t, b, "orders.eu", "created", "one")
	// A plain NATS client on the TCP listener reaches the same stream.
	nc, err := nats.Connect(b.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	m := nats.NewMsg("sse.orders.us")
	m.Header.Set(HeaderEvent, "updated")
	m.Data = []byte("two")
	if err := nc.PublishMsg(m); err != nil {
		t.Fatal(err)
	}
	want := []Message{
		{Seq: 1, Topic: "orders.eu", Type: "created", Data: []byte("one")},
		{Seq: 2, Topic: "orders.us", Type: "updated", Data: []byte("two")},
	}
	for _, w := range want {
		select {
		case m := <-got:
			if m.Seq != w.Seq || m.Topic != w.Topic || m.Type != w.Type || string(m.Data) != string(w.Data) {
				t.Fatalf("got %+v, want %+v", m, w)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("timed out waiting for seq %d", w.Seq)
		}
	}
}

func TestBusIdempotentPublish(t *testing.T) {
	t.Parallel()
	b := newTestBus(t)
	p := Publication{Topic: "a", Data: []byte("x"), MsgID: "key-1"}
	r1, err := b.Publish(t.Context(), p)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := b.Publish(t.Context(), p)
	if err != nil {
		t.Fatal(err)
	}
	if r1.Duplicate || !r2.Duplicate || r1.Seq != r2.Seq {
		t.Fatalf("first %+v, second %+v: want the second to be a duplicate of the first", r1, r2)
	}
}

func TestBusReplay(t *testing.T) {
	t.Parallel()
	b := newTestBus(t)
	topics := []string{"a.x", "b.y", "a.z", "c", "a.x.deep"}
	for i := 0; i < 300; i++ {
		publish(t, b, topics[i%len(topics)], "", fmt.Sprint(i))
	}
	tests := []struct {
		name        string
		filters     []string
		after, upTo uint64
	}{
		{"one filter", []string{"a.x"}, 0, 300},
		{"wildcard", []string{"a.*"}, 10, 200},
		{"tail wildcard", []string{"a.>"}, 0, 300},
		{"several overlapping", []string{"a.*", "a.x", "*.y"}, 5, 295},
		{"nothing after", []string{"c"}, 300, 300},
		{"no match", []string{"zzz"}, 0, 300},
		{"more than a batch", []string{">"}, 0, 300},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var want []uint64
			for seq := tt.after + 1; seq <= tt.upTo; seq++ {
				topic := topics[(seq-1)%uint64(len(topics))]
				for _, f := range tt.filters {
					if Covers(f, topic) {
						want = append(want, seq)
						break
					}
				}
			}
			var got []uint64
			err := b.Replay(t.Context(), tt.filters, tt.after, tt.upTo, func(m Message) error {
				got = append(got, m.Seq)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("got %v\nwant %v", got, want)
			}
		})
	}
	// Replays delete their consumers.
	names := b.stream.ConsumerNames(t.Context())
	n := 0
	for range names.Name() {
		n++
	}
	if n != 0 {
		t.Fatalf("%d consumers left after replays", n)
	}
}

func TestBusReplayStopsOnError(t *testing.T) {
	t.Parallel()
	b := newTestBus(t)
	for i := 0; i < 10; i++ {
		publish(t, b, "a", "", "x")
	}
	stop := errors.New("stop")
	calls := 0
	err := b.Replay(t.Context(), []string{"a"}, 0, 10, func(Message) error {
		calls++
		if calls == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || calls != 3 {
		t.Fatalf("err %v after %d calls; want stop after 3", err, calls)
	}
}

// TestBusRestartKeepsHistoryAndEpoch restarts a Bus on its store, as it was and with client
// auth turned on (token clients get an account of their own; the stream stays where it was).
func TestBusRestartKeepsHistoryAndEpoch(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		restart func(*Options)
	}{
		{"as it was", func(*Options) {}},
		{"with client auth", func(o *Options) {
			o.ClientAuth = func(string) (ClientGrants, error) { return ClientGrants{}, errors.New("none") }
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			b, err := New(testOptions(t, func(o *Options) { o.StoreDir = dir }))
			if err != nil {
				t.Fatal(err)
			}
			publish(t, b, "a", "", "1")
			publish(t, b, "a", "", "2")
			epoch := b.Epoch()
			b.Close()

			b2 := newTestBus(t, func(o *Options) { o.StoreDir = dir }, tc.restart)
			if b2.Epoch() != epoch {
				t.Fatalf("epoch changed across restart: %d then %d", epoch, b2.Epoch())
			}
			first, last, err := b2.State(t.Context())
			if err != nil || first != 1 || last != 2 {
				t.Fatalf("state %d..%d, %v; want 1..2", first, last, err)
			}
		})
	}
}

func TestBusDataDirLocked(t *testing.T) {
	t.Parallel()
	b := newTestBus(t)
	_, err := New(testOptions(t, func(o *Options) { o.StoreDir = b.opts.StoreDir }))
	if !errors.Is(err, ErrDataDirLocked) || !strings.Contains(err.Error(), b.opts.StoreDir) {
		t.Fatalf("second bus on the same dir: %v; want ErrDataDirLocked naming the dir", err)
	}
}

func TestBusPortTaken(t *testing.T) {
	t.Parallel()
	b := newTestBus(t, func(o *Options) { o.ClientAddr = "127.0.0.1:0" })
	addr := strings.TrimPrefix(b.ClientURL(), "nats://")
	_, err := New(testOptions(t, func(o *Options) { o.ClientAddr = addr; o.StartTimeout = 5 * time.Second }))
	if err == nil || !strings.Contains(err.Error(), "listen") {
		t.Fatalf("bus on a taken port: %v; want an error about listening", err)
	}
}

func TestBusRetention(t *testing.T) {
	t.Parallel()
	b := newTestBus(t, func(o *Options) { o.MaxMsgs = 5 })
	for i := 0; i < 12; i++ {
		publish(t, b, "a", "", "x")
	}
	first, last, err := b.State(t.Context())
	if err != nil || first != 8 || last != 12 {
		t.Fatalf("state %d..%d, %v; want 8..12", first, last, err)
	}
}

func TestFeedCloseDeletesConsumer(t *testing.T) {
	t.Parallel()
	b := newTestBus(t)
	f, _ := follow(t, b, 0)
	publish(t, b, "a", "", "x")
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	info, err := b.stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Consumers != 0 {
		t.Fatalf("%d consumers after the feed closed", info.State.Consumers)
	}
}

func TestReplayTruncated(t *testing.T) {
	t.Parallel()
	b := newTestBus(t, func(o *Options) { o.MaxMsgs = 5 })
	for i := 0; i < 12; i++ {
		publish(t, b, "a", "", "x")
	}
	err := b.Replay(t.Context(), []string{"a"}, 2, 12, func(Message) error {
		t.Fatal("fn called for a truncated replay")
		return nil
	})
	var trunc *TruncatedError
	if !errors.As(err, &trunc) || trunc.After != 2 || trunc.First != 8 {
		t.Fatalf("err %v, want TruncatedError{2, 8}", err)
	}
	// From the oldest stored event on, the replay works.
	n := 0
	if err := b.Replay(t.Context(), []string{"a"}, 7, 12, func(Message) error { n++; return nil }); err != nil || n != 5 {
		t.Fatalf("replay from 7: %d events, %v", n, err)
	}
}
