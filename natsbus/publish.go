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
	// abandonedAfter bounds the wait for an answer that never comes on a Bus that does not
	// resend, when the caller's context has no deadline.
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
// unique one there — unless this node of an embedded cluster is cut off from a quorum
// (see CutOff): then it fails at once with ErrCutOff, for the caller to try elsewhere. A
// standalone Bus's stream is in its own server: it waits for the one answer. Errors are
// ErrUnavailable (wrapping the last failure, ctx's error, or ErrCutOff) and ErrClosed.
func (b *Bus) Publish(ctx context.Context, p Publication) (PublishResult, error) {
	return b.publishBy(ctx, p, time.Time{})
}

// PublishWithin is Publish that also gives up after timeout, as if ctx had that deadline
// (the error wraps context.DeadlineExceeded), without the cost of a context of its own.
func (b *Bus) PublishWithin(ctx context.Context, p Publication, timeout time.Duration) (PublishResult, error) {
	return b.publishBy(ctx, p, time.Now().Add(timeout))
}

// publishBy is Publish, given up on at deadline (unless zero) or when ctx is done.
func (b *Bus) publishBy(ctx context.Context, p Publication, deadline time.Time) (PublishResult, error) {
	m := nats.Msg{Subject: b.Subject(p.Topic), Data: p.Data}
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
	ans, err := b.publish(ctx, &m, id != "", deadline)
	if err != nil {
		return PublishResult{}, err
	}
	return PublishResult{Seq: ans.seq, Duplicate: ans.duplicate && p.MsgID != ""}, nil
}

// publish sends m until the stream acknowledges it, retrying as Publish says. Without a
// Nats-Msg-Id (dedup false), m is never sent again after an attempt that may have
// reached the stream. It gives up at deadline, unless zero, or when ctx is done.
func (b *Bus) publish(ctx context.Context, m *nats.Msg, dedup bool, deadline time.Time) (answer, error) {
	var backoff time.Duration
	for {
		ans, err := b.attempt(ctx, m, deadline)
		switch {
		case err == nil:
			return ans, nil
		case errors.Is(err, ErrClosed):
			return answer{}, err
		case ctx.Err() != nil, errors.Is(err, context.DeadlineExceeded):
			return answer{}, fmt.Errorf("%w: publish: %w", ErrUnavailable, err)
		case errors.Is(err, jetstream.ErrAsyncPublishTimeout), errors.Is(err, nats.ErrDisconnected):
			if !dedup || !b.resends {
				return answer{}, fmt.Errorf("%w: publish: %w", ErrUnavailable, err)
			}
			if cut := b.CutOff(); cut != nil {
				return answer{}, fmt.Errorf("publish: %w", cut) // no leader this side will answer
			}
			backoff = 0 // it waited long enough: again at once
			continue
		case errors.Is(err, jetstream.ErrNoStreamResponse) && b.resends, // a new leader is coming
			errors.Is(err, jetstream.ErrTooManyStalledMsgs), retryableAPIError(err):
			if cut := b.CutOff(); cut != nil {
				return answer{}, fmt.Errorf("publish: %w", cut)
			}
		default:
			return answer{}, fmt.Errorf("%w: publish: %w", ErrUnavailable, err)
		}
		backoff = min(max(2*backoff, firstBackoff), maxBackoff)
		pause := backoff/2 + rand.N(backoff/2)
		if !deadline.IsZero() && time.Until(deadline) < pause {
			pause = time.Until(deadline)
		}
		wait := time.NewTimer(pause)
		select {
		case <-wait.C:
			if !deadline.IsZero() && !time.Now().Before(deadline) {
				return answer{}, fmt.Errorf("%w: publish: %w (%w)", ErrUnavailable, context.DeadlineExceeded, err)
			}
		case <-ctx.Done():
			wait.Stop()
			return answer{}, fmt.Errorf("%w: publish: %w (%w)", ErrUnavailable, ctx.Err(), err)
		case <-b.closed:
			wait.Stop()
			return answer{}, ErrClosed
		}
	}
}

// attempt sends m once and waits for the stream's answer, an error, ctx, deadline (unless
// zero: then context.DeadlineExceeded) or the Bus's closing. On a Bus that resends, it
// gives up on the answer after attemptTimeout; on another, after abandonedAfter when
// neither ctx nor deadline bounds the wait.
func (b *Bus) attempt(ctx context.Context, m *nats.Msg, deadline time.Time) (answer, error) {
	var timeout time.Duration
	d, bounded := ctx.Deadline()
	switch {
	case bounded && !time.Now().Before(d):
		return answer{}, context.DeadlineExceeded // perhaps before ctx says so
	case b.resends:
		timeout = attemptTimeout
	case !bounded && deadline.IsZero():
		timeout = abandonedAfter
	}
	last := false // deadline comes before the attempt's own timeout
	if !deadline.IsZero() {
		left := time.Until(deadline)
		if left <= 0 {
			return answer{}, context.DeadlineExceeded
		}
		if timeout == 0 || left <= timeout {
			timeout, last = left, true
		}
	}
	ans, err := b.acks.send(ctx, b.closed, b.nc, m, timeout)
	switch {
	case err == nil, errors.Is(err, ErrClosed):
	case b.closing():
		return answer{}, ErrClosed
	case last && (errors.Is(err, jetstream.ErrAsyncPublishTimeout) || errors.Is(err, jetstream.ErrTooManyStalledMsgs)):
		return answer{}, context.DeadlineExceeded
	}
	return ans, err
}

// retryableAPIError reports whether the stream's answer err asks to try again.
func retryableAPIError(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == errCodeMsgIDInProcess || apiErr.Code == 503)
}
