package natsbus

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// unansweringBus returns a Bus whose stream is gone: a publish on topic "gone" meets no
// responders, and one on "silent" reaches a subscriber that never answers. It returns how
// many publishes that subscriber received.
func unansweringBus(t *testing.T, set ...func(*Options)) (*Bus, *atomic.Int64) {
	t.Helper()
	b := newTestBus(t, set...)
	if err := b.js.DeleteStream(t.Context(), b.opts.Stream); err != nil {
		t.Fatal(err)
	}
	var silent atomic.Int64
	if _, err := b.nc.Subscribe(b.Subject("silent"), func(*nats.Msg) { silent.Add(1) }); err != nil {
		t.Fatal(err)
	}
	if err := b.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return b, &silent
}

// TestPublishDeadline: a publish that gets no answer, or "no responders" again and again
// while a new leader may come, ends with its context's deadline, or PublishWithin's
// timeout, as unavailable. A standalone Bus, whose stream no other server may take over,
// answers "no responders" at once.
func TestPublishDeadline(t *testing.T) {
	t.Parallel()
	const timeout = 300 * time.Millisecond
	bounds := map[string]func(*Bus, Publication) (PublishResult, error){
		"ctx": func(b *Bus, p Publication) (PublishResult, error) {
			ctx, cancel := context.WithTimeout(t.Context(), timeout)
			defer cancel()
			return b.Publish(ctx, p)
		},
		"within": func(b *Bus, p Publication) (PublishResult, error) {
			return b.PublishWithin(t.Context(), p, timeout)
		},
	}
	for _, mode := range []string{"standalone", "resending"} {
		b, _ := unansweringBus(t)
		b.resends = mode == "resending" // as in a cluster
		for _, topic := range []string{"gone", "silent"} {
			for bound, publish := range bounds {
				t.Run(mode+"/"+topic+"/"+bound, func(t *testing.T) {
					began := time.Now()
					_, err := publish(b, Publication{Topic: topic, Data: []byte("x")})
					took := time.Since(began)
					if mode == "standalone" && topic == "gone" {
						if !errors.Is(err, ErrUnavailable) || !errors.Is(err, jetstream.ErrNoStreamResponse) || took > 5*time.Second {
							t.Fatalf("got %v after %s, want no responders at once", err, took)
						}
						return
					}
					if !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
						t.Fatalf("got %v, want unavailable at the deadline", err)
					}
					if took < timeout || took > timeout+5*time.Second {
						t.Fatalf("returned after %s, want about %s", took, timeout)
					}
				})
			}
		}
	}
}

// TestPublishClose: closing the Bus ends the publishes waiting for an answer at once, with
// ErrClosed, however long their contexts. (Not parallel: it counts goroutines.)
func TestPublishClose(t *testing.T) {
	baseline := runtime.NumGoroutine()
	b, silent := unansweringBus(t)
	b.resends = true // and those waiting to send again
	inMsgs := func() int64 { v, _ := b.ns.Varz(nil); return v.InMsgs }
	before := inMsgs()
	const each = 20
	done := make(chan error, 2*each)
	for i := range 2 * each {
		topic := []string{"gone", "silent"}[i%2]
		go func() {
			_, err := b.Publish(context.Background(), Publication{Topic: topic, Data: []byte(fmt.Sprint(i))})
			done <- err
		}()
	}
	// Wait until they have all been sent at least once.
	deadline := time.Now().Add(20 * time.Second)
	for silent.Load() < each || inMsgs() < before+2*each {
		if time.Now().After(deadline) {
			t.Fatalf("publishes not sent: %d silent, %d messages in", silent.Load(), inMsgs())
		}
		<-time.After(10 * time.Millisecond) // polling interval
	}
	closed := time.Now()
	b.Close()
	for range 2 * each {
		select {
		case err := <-done:
			if !errors.Is(err, ErrClosed) {
				t.Errorf("got %v, want ErrClosed", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("publishes still waiting %s after Close", time.Since(closed).Round(time.Millisecond))
		}
	}
	deadline = time.Now().Add(20 * time.Second)
	for runtime.NumGoroutine() > baseline {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines left, %d before:\n%s", runtime.NumGoroutine(), baseline, buf[:runtime.Stack(buf, true)])
		}
		<-time.After(10 * time.Millisecond) // polling interval
	}
}
