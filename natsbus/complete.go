package natsbus

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// A replay's consumer has one replica, which NATS may place on any node holding the
// stream, and it delivers what that node's copy holds: a node that lags the stream's
// leader (it restarted and is catching up, or it applies the newest messages a moment
// later) would end a replay early without a word. So, on a replicated stream, a replay
// that ends asks the leader whether a matching message lies between the last one it
// delivered and its bound, and goes on from there if so.

// apiPrefix is the subject prefix of the JetStream API the Bus uses.
func (b *Bus) apiPrefix() string {
	if b.opts.JetStreamDomain != "" {
		return "$JS." + b.opts.JetStreamDomain + ".API."
	}
	return jetstream.DefaultAPIPrefix
}

// replicated reports whether the stream has more than one replica, as it was when the Bus
// created or found it.
func (b *Bus) replicated() bool {
	info := b.stream.CachedInfo()
	return info != nil && info.Config.Replicas > 1
}

// msgGetRequest asks the stream's leader (not a replica, as a direct get would) for the
// first message at or after Seq on a subject.
type msgGetRequest struct {
	Seq     uint64 `json:"seq"`
	NextFor string `json:"next_by_subj"`
}

type msgGetResponse struct {
	Error   *jetstream.APIError `json:"error,omitempty"`
	Message *struct {
		Seq uint64 `json:"seq"`
	} `json:"message,omitempty"`
}

// missedAfter asks the stream's leader for the first message after seq, up to upTo, on
// any of subjects, and returns its sequence, or 0 if there is none.
func (b *Bus) missedAfter(ctx context.Context, subjects []string, seq, upTo uint64) (uint64, error) {
	first := uint64(0)
	for _, subj := range subjects {
		req, _ := json.Marshal(msgGetRequest{Seq: seq + 1, NextFor: subj})
		m, err := b.nc.RequestWithContext(ctx, b.apiPrefix()+"STREAM.MSG.GET."+b.opts.Stream, req)
		if err != nil {
			return 0, fmt.Errorf("%w: ask the stream's leader what follows %d: %w", ErrUnavailable, seq, err)
		}
		var resp msgGetResponse
		if err := json.Unmarshal(m.Data, &resp); err != nil {
			return 0, fmt.Errorf("%w: the stream's leader's answer: %w", ErrUnavailable, err)
		}
		switch {
		case resp.Error != nil && resp.Error.ErrorCode == jetstream.JSErrCodeMessageNotFound:
		case resp.Error != nil:
			return 0, fmt.Errorf("%w: ask the stream's leader what follows %d: %w", ErrUnavailable, seq, resp.Error)
		case resp.Message != nil && resp.Message.Seq <= upTo && (first == 0 || resp.Message.Seq < first):
			first = resp.Message.Seq
		}
	}
	return first, nil
}
