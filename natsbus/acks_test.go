package natsbus

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestParseAnswer(t *testing.T) {
	t.Parallel()
	noResponders := nats.Header{"Status": []string{"503"}}
	for _, tc := range []struct {
		name   string
		header nats.Header
		data   string
		want   answer
		err    error
	}{
		{"ack", nil, `{"stream":"NATSSE","seq":12}`, answer{seq: 12}, nil},
		{"ack with domain", nil, `{"stream":"NATSSE","domain":"hub","seq":7}`, answer{seq: 7}, nil},
		{"duplicate", nil, `{"stream":"NATSSE","seq":3,"duplicate": true}`, answer{seq: 3, duplicate: true}, nil},
		{"duplicate, encoded", nil, `{"stream":"NATSSE","seq":3,"duplicate":true}`, answer{seq: 3, duplicate: true}, nil},
		{"largest sequence", nil, `{"stream":"S","seq":18446744073709551615}`, answer{seq: 1<<64 - 1}, nil},
		{"other fields", nil, `{"stream":"S","seq":5,"val":"x"}`, answer{seq: 5}, nil},
		{"no responders", noResponders, ``, answer{}, jetstream.ErrNoStreamResponse},
		{"error", nil, `{"error":{"code":503,"err_code":10158,"description":"in process"}}`, answer{}, &jetstream.APIError{Code: 503, ErrorCode: 10158, Description: "in process"}},
		{"error with a stream", nil, `{"stream":"S","error":{"code":400,"err_code":10060,"description":"bad"},"seq":1}`, answer{}, &jetstream.APIError{Code: 400, ErrorCode: 10060, Description: "bad"}},
		{"not JSON", nil, `{"stream":"S","seq":12`, answer{}, jetstream.ErrInvalidJSAck},
		{"no stream", nil, `{"seq":12}`, answer{}, jetstream.ErrInvalidJSAck},
		{"empty", nil, ``, answer{}, jetstream.ErrInvalidJSAck},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := parseAnswer(&nats.Msg{Header: tc.header, Data: []byte(tc.data)})
			err := got.err
			got.err = nil
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
			var want, gotAPI *jetstream.APIError
			switch {
			case errors.As(tc.err, &want):
				if !errors.As(err, &gotAPI) || *gotAPI != *want {
					t.Errorf("error %v, want %v", err, tc.err)
				}
			case !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil):
				t.Errorf("error %v, want %v", err, tc.err)
			}
		})
	}
}

// TestPublishLateAnswer: an answer that comes after its publish was given up on — at its
// deadline, or when the connection was lost — is not taken for the answer to a later
// publish, even with every slot in flight again.
func TestPublishLateAnswer(t *testing.T) {
	t.Parallel()
	for _, how := range []string{"deadline", "disconnection"} {
		t.Run(how, func(t *testing.T) {
			t.Parallel()
			b, _ := unansweringBus(t)
			replies := make(chan string, 2*maxPublishesInFlight)
			if _, err := b.nc.Subscribe(b.Subject("silent"), func(m *nats.Msg) { replies <- m.Reply }); err != nil {
				t.Fatal(err)
			}
			if err := b.nc.Flush(); err != nil {
				t.Fatal(err)
			}
			nextReply := func() string {
				select {
				case r := <-replies:
					return r
				case <-time.After(30 * time.Second):
					t.Fatal("a publish did not reach the silent subscriber within 30s")
					return ""
				}
			}
			var late string
			switch how {
			case "deadline":
				_, err := b.PublishWithin(t.Context(), Publication{Topic: "silent", Data: []byte("given up")}, 100*time.Millisecond)
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("got %v, want the deadline", err)
				}
				late = nextReply()
			case "disconnection":
				failed := make(chan error, 1)
				go func() {
					_, err := b.Publish(t.Context(), Publication{Topic: "silent", Data: []byte("lost")})
					failed <- err
				}()
				late = nextReply()
				b.acks.failAll(nats.ErrDisconnected) // as the connection's loss does
				if err := <-failed; !errors.Is(err, nats.ErrDisconnected) {
					t.Fatalf("got %v, want disconnected", err)
				}
			}

			// Every slot in flight.
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			type outcome struct {
				res PublishResult
				err error
			}
			outcomes := make(chan outcome, maxPublishesInFlight)
			for i := range maxPublishesInFlight {
				go func() {
					res, err := b.Publish(ctx, Publication{Topic: "silent", Data: []byte(fmt.Sprint(i))})
					outcomes <- outcome{res, err}
				}()
			}
			var marker string
			for i := range maxPublishesInFlight {
				if r := nextReply(); i == 0 {
					marker = r
				}
			}
			// The late answer, then one to a publish in flight: once that is answered, the
			// late one has been dealt with too (answers are taken in order).
			if err := b.nc.Publish(late, []byte(`{"stream":"NATSSE","seq":999}`)); err != nil {
				t.Fatal(err)
			}
			if err := b.nc.Publish(marker, []byte(`{"stream":"NATSSE","seq":1000}`)); err != nil {
				t.Fatal(err)
			}
			for answered := 0; answered < maxPublishesInFlight; answered++ {
				var o outcome
				select {
				case o = <-outcomes:
				case <-time.After(30 * time.Second):
					t.Fatalf("%d publishes answered within 30s, want %d", answered, maxPublishesInFlight)
				}
				switch {
				case o.err == nil && o.res.Seq == 1000:
					cancel() // the rest end with ctx
				case o.err == nil:
					t.Errorf("a publish got the answer of seq %d, meant for another", o.res.Seq)
				case !errors.Is(o.err, context.Canceled):
					t.Errorf("got %v, want the context's end", o.err)
				}
			}
		})
	}
}

// TestPublishAllSlotsTaken: while maxPublishesInFlight publishes await their answers, another
// waits for a free slot, within its timeout, then takes the slot freed first.
func TestPublishAllSlotsTaken(t *testing.T) {
	t.Parallel()
	b, silent := unansweringBus(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	errs := make(chan error, maxPublishesInFlight)
	for range maxPublishesInFlight {
		go func() {
			_, err := b.Publish(ctx, Publication{Topic: "silent", Data: []byte("x")})
			errs <- err
		}()
	}
	deadline := time.Now().Add(30 * time.Second)
	for silent.Load() < maxPublishesInFlight {
		if time.Now().After(deadline) {
			t.Fatalf("%d publishes in flight after 30s, want %d", silent.Load(), maxPublishesInFlight)
		}
		<-time.After(10 * time.Millisecond) // polling interval
	}
	const timeout = 300 * time.Millisecond
	began := time.Now()
	within := make(chan error, 1)
	go func() {
		_, err := b.PublishWithin(t.Context(), Publication{Topic: "stored", Data: []byte("y")}, timeout)
		within <- err
	}()
	var err error
	select {
	case err = <-within:
	case <-time.After(30 * time.Second):
		t.Fatalf("PublishWithin waited 30s for a slot, want at most %s", timeout)
	}
	if took := time.Since(began); !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) || took < timeout || took > timeout+5*time.Second {
		t.Fatalf("got %v after %s, want unavailable at the deadline, %s", err, took, timeout)
	}
	if n := silent.Load(); n != maxPublishesInFlight {
		t.Fatalf("%d publishes sent, want %d: one was sent without a free slot", n, maxPublishesInFlight)
	}
	// A slot freed lets a waiting publish go.
	go func() { _, _ = b.Publish(t.Context(), Publication{Topic: "silent", Data: []byte("z")}) }() // ends with the test
	cancel()
	for range maxPublishesInFlight {
		if err := <-errs; !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want the context's end", err)
		}
	}
	for silent.Load() <= maxPublishesInFlight {
		if time.Now().After(deadline.Add(30 * time.Second)) {
			t.Fatal("the waiting publish was not sent once slots were free")
		}
		<-time.After(10 * time.Millisecond) // polling interval
	}
}
