package natsbus

import (
	"context"
	"time"
)

// stateTimeout bounds a request for the stream's state that several callers share, since
// it cannot end with any one caller's context.
const stateTimeout = 10 * time.Second

// streamState is the first and last sequence stored in the stream.
type streamState struct{ first, last uint64 }

// State returns the first and last sequence stored in the stream. An empty stream has
// first = last+1.
//
// Concurrent calls share one request to the stream, so that a storm of resuming clients
// costs a few round trips rather than one each. The answer may therefore have been read a
// moment before the call began: a caller that needs a state read after some event it knows
// of calls again, and the second answer is read after the first.
// The shared request runs on a goroutine of its own, which ends within stateTimeout, at
// once when the Bus closes.
func (b *Bus) State(ctx context.Context) (first, last uint64, err error) {
	ch := b.states.DoChan("state", func() (any, error) {
		ctx, cancel := context.WithTimeout(context.Background(), stateTimeout)
		defer cancel()
		info, err := b.info(ctx)
		if err != nil {
			return streamState{}, err
		}
		s := streamState{first: info.State.FirstSeq, last: info.State.LastSeq}
		if s.first == 0 {
			s.first = s.last + 1
		}
		return s, nil
	})
	select {
	case r := <-ch:
		s := r.Val.(streamState)
		return s.first, s.last, r.Err
	case <-ctx.Done():
		return 0, 0, ctx.Err()
	case <-b.closed:
		return 0, 0, ErrClosed
	}
}
