package natsbus

import (
	"context"
	"time"
)

// stateTimeout bounds a request for the stream's state that several callers share, since
// it cannot end with any one caller's context.
const stateTimeout = 10 * time.Second

// streamState is the first and last sequence stored in the stream, and when the request
// that read them was sent.
type streamState struct {
	first, last uint64
	asked       time.Time
}

// State returns the first and last sequence stored in the stream. An empty stream has
// first = last+1.
//
// Every answer is read after the call began. A standalone embedded server's store is read
// in place, without a request (see localState). Otherwise concurrent calls share one
// request to the stream, so that a storm of resuming clients costs a few round trips
// rather than one each: a call that finds a request already in flight waits for it, then
// shares the next one. The shared request runs on a goroutine of its own, which ends
// within stateTimeout, at once when the Bus closes.
func (b *Bus) State(ctx context.Context) (first, last uint64, err error) {
	select {
	case <-b.closed:
		return 0, 0, ErrClosed
	default:
	}
	if s, ok := b.localState(); ok {
		return s.first, s.last, nil
	}
	began := time.Now()
	for {
		s, err := b.sharedState(ctx)
		if !s.asked.IsZero() && s.asked.Before(began) {
			continue // sent before this call: the next request is sent after it
		}
		return s.first, s.last, err
	}
}

// sharedState returns the state read by the request in flight, or by a new one; asked is
// zero when the call ended before the request did.
func (b *Bus) sharedState(ctx context.Context) (streamState, error) {
	ch := b.states.DoChan("state", func() (any, error) {
		s := streamState{asked: time.Now()}
		ctx, cancel := context.WithTimeout(context.Background(), stateTimeout)
		defer cancel()
		info, err := b.info(ctx)
		if err != nil {
			return s, err
		}
		s.first, s.last = info.State.FirstSeq, info.State.LastSeq
		if s.first == 0 {
			s.first = s.last + 1
		}
		return s, nil
	})
	select {
	case r := <-ch:
		return r.Val.(streamState), r.Err
	case <-ctx.Done():
		return streamState{}, ctx.Err()
	case <-b.closed:
		return streamState{}, ErrClosed
	}
}
