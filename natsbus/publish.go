package natsbus

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// Publication is an event to store.
type Publication struct {
	Topic string // a valid topic, without wildcards
	Type  string // SSE event type; "" for the default
	Data  []byte
	MsgID string // deduplication key (Nats-Msg-Id); "" for none
}

// PublishResult says where the stream stored a publication.
type PublishResult struct {
	Seq uint64
	// Duplicate: the MsgID was seen within the duplicate window, and Seq is the first
	// copy's. With a MsgID of the caller's, the first copy may also be an earlier attempt
	// of the same Publish whose acknowledgement was lost.
	Duplicate bool
}

// maxPublishesInFlight bounds the publishes awaiting their acknowledgement on a Bus's
// connection; beyond it, Publish waits for a slot.
const maxPublishesInFlight = 1024

// How Publish retries. An attempt is answered within milliseconds while the stream has a
// leader; the stream answers no more while a replicated stream elects a new one (a few
// seconds after its leader's node died), and "no responders" comes back at once while no
// server has the stream.
const (
	attemptTimeout = 2 * time.Second       // an unanswered attempt is sent again after this
	firstBackoff   = 50 * time.Millisecond // the wait after a first "no responders"
	maxBackoff     = 500 * time.Millisecond
	// abandonedAfter bounds how long nats.go keeps an attempt that is never answered, on a
	// Bus that does not resend: its caller's context ends first.
	abandonedAfter = time.Minute
)

// errCodeMsgIDInProcess is JetStream's answer to a Nats-Msg-Id whose first copy a
// replicated stream has not finished storing: ask again.
const errCodeMsgIDInProcess jetstream.ErrorCode = 10158

// Publish stores p in the stream and waits for the acknowledgement, until ctx is done or
// the Bus closes (then it returns ErrClosed at once). It is safe for concurrent use:
// concurrent publishes are sent at once, each answered as its acknowledgement arrives, with
// at most maxPublishesInFlight awaiting theirs.
//
// On a Bus whose stream can lose its leader — in a cluster, or in another deployment — a
// publish that meets "no responders" (no server has the stream while a new leader is
// elected) is sent again after a short wait, growing up to half a second, and one
// unanswered for two seconds (its leader died with it) is sent again at once, with the same
// Nats-Msg-Id, so that the stream stores it once: a publication without MsgID is given a
// unique one there. A standalone Bus's stream is in its own server: it waits for the one
// answer. Errors are ErrUnavailable (wrapping the last failure, or ctx's error) and
// ErrClosed.
func (b *Bus) Publish(ctx context.Context, p Publication) (PublishResult, error) {
	m := &nats.Msg{Subject: b.Subject(p.Topic), Data: p.Data}
	id := p.MsgID
	if id == "" && b.resends {
		id = nuid.Next()
	}
	if p.Type != "" || id != "" {
		m.Header = make(nats.Header, 2)
		if p.Type != "" {
			m.Header[HeaderEvent] = []string{p.Type}
		}
		if id != "" {
			m.Header[jetstream.MsgIDHeader] = []string{id}
		}
	}
	ack, err := b.publish(ctx, m, id != "")
	if err != nil {
		return PublishResult{}, err
	}
	return PublishResult{Seq: ack.Sequence, Duplicate: ack.Duplicate && p.MsgID != ""}, nil
}

// publish sends m until the stream acknowledges it, retrying as Publish says. Without a
// Nats-Msg-Id (dedup false), m is never sent again after an attempt that may have
// reached the stream.
func (b *Bus) publish(ctx context.Context, m *nats.Msg, dedup bool) (*jetstream.PubAck, error) {
	var backoff time.Duration
	for {
		ack, err := b.attempt(ctx, m)
		switch {
		case err == nil:
			return ack, nil
		case errors.Is(err, ErrClosed):
			return nil, err
		case ctx.Err() != nil, errors.Is(err, context.DeadlineExceeded):
			return nil, fmt.Errorf("%w: publish: %w", ErrUnavailable, err)
		case errors.Is(err, jetstream.ErrAsyncPublishTimeout), errors.Is(err, nats.ErrDisconnected):
			if !dedup || !b.resends {
				return nil, fmt.Errorf("%w: publish: %w", ErrUnavailable, err)
			}
			backoff = 0 // it waited long enough: again at once
			continue
		case errors.Is(err, jetstream.ErrNoStreamResponse) && b.resends, // a new leader is coming
			errors.Is(err, jetstream.ErrTooManyStalledMsgs), retryableAPIError(err):
		default:
			return nil, fmt.Errorf("%w: publish: %w", ErrUnavailable, err)
		}
		backoff = min(max(2*backoff, firstBackoff), maxBackoff)
		wait := time.NewTimer(backoff/2 + rand.N(backoff/2))
		select {
		case <-wait.C:
		case <-ctx.Done():
			wait.Stop()
			return nil, fmt.Errorf("%w: publish: %w (%w)", ErrUnavailable, ctx.Err(), err)
		case <-b.closed:
			wait.Stop()
			return nil, ErrClosed
		}
	}
}

// attempt sends m once and waits for its acknowledgement, an error, ctx or the Bus's
// closing. nats.go gives up on the acknowledgement after attemptTimeout (abandonedAfter on
// a Bus that does not resend).
func (b *Bus) attempt(ctx context.Context, m *nats.Msg) (*jetstream.PubAck, error) {
	stall := attemptTimeout
	if d, ok := ctx.Deadline(); ok {
		if stall = min(stall, time.Until(d)); stall <= 0 {
			return nil, context.DeadlineExceeded // perhaps before ctx says so
		}
	}
	f, err := b.js.PublishMsgAsync(m, jetstream.WithRetryAttempts(0), jetstream.WithStallWait(stall))
	if err != nil {
		if b.closing() {
			return nil, ErrClosed
		}
		return nil, err
	}
	select {
	case ack := <-f.Ok():
		return ack, nil
	case err := <-f.Err():
		return nil, err
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-b.closed:
		return nil, ErrClosed
	}
}

// retryableAPIError reports whether the stream's answer err asks to try again.
func retryableAPIError(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == errCodeMsgIDInProcess || apiErr.Code == 503)
}
