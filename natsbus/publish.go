package natsbus

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
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
	Seq       uint64
	Duplicate bool // the MsgID was seen within the duplicate window: Seq is the first copy's
}

// Publish stores p in the stream and waits for the acknowledgement. It is safe for
// concurrent use.
func (b *Bus) Publish(ctx context.Context, p Publication) (PublishResult, error) {
	m := nats.NewMsg(b.Subject(p.Topic))
	m.Data = p.Data
	if p.Type != "" {
		m.Header.Set(HeaderEvent, p.Type)
	}
	var opts []jetstream.PublishOpt
	if p.MsgID != "" {
		opts = append(opts, jetstream.WithMsgID(p.MsgID))
	}
	ack, err := b.js.PublishMsg(ctx, m, opts...)
	if err != nil {
		return PublishResult{}, fmt.Errorf("%w: publish: %w", ErrUnavailable, err)
	}
	return PublishResult{Seq: ack.Sequence, Duplicate: ack.Duplicate}, nil
}
