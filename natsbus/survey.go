package natsbus

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// PresenceCounts is the result of a presence survey.
type PresenceCounts struct {
	// Streams holds, for each topic surveyed, the streams that an event on it would reach,
	// summed over the gateways that answered.
	Streams []uint64
	// Gateways is how many gateways answered, the surveying one included.
	Gateways int
	// AllAnswered says that every gateway the server knows to listen answered, so that the
	// survey ended before its wait. Only an embedded server that holds the stream knows
	// how many listen; on a leaf node or an external deployment a survey always waits, and
	// AllAnswered is false.
	AllAnswered bool
}

// Survey asks every gateway that shares the stream (this one answers itself, at once) how
// many of its streams an event on each topic would reach, and sums their answers. It
// collects answers until every gateway known to listen has answered, or for wait at most.
// Topics are literal (no wildcards), at most MaxSurveyTopics. Survey is safe for
// concurrent use; it returns ctx's error when ctx ends first, ErrUnavailable when it
// cannot ask, and ErrClosed once the Presence is closed.
func (p *Presence) Survey(ctx context.Context, topics []string, wait time.Duration) (PresenceCounts, error) {
	if err := validSurvey(p.id, topics); err != nil {
		return PresenceCounts{}, err
	}
	select {
	case <-p.stop:
		return PresenceCounts{}, fmt.Errorf("%w: presence", ErrClosed)
	default:
	}
	res := PresenceCounts{Streams: make([]uint64, len(topics)), Gateways: 1}
	copy(res.Streams, p.count(topics))
	listening, known := p.b.presenceListeners(p.subject)
	others := listening - 1 // this one is among them
	if known && others <= 0 {
		res.AllAnswered = true
		return res, nil
	}
	nc := p.b.nc
	inbox := nc.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		return res, fmt.Errorf("%w: presence survey: %w", ErrUnavailable, err)
	}
	defer sub.Unsubscribe()
	body, err := json.Marshal(presenceRequest{From: p.id, Topics: topics})
	if err != nil {
		return res, fmt.Errorf("natsbus: presence survey: %w", err)
	}
	if err := nc.PublishRequest(p.subject, inbox, body); err != nil {
		return res, fmt.Errorf("%w: presence survey: %w", ErrUnavailable, err)
	}
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	answered := map[string]bool{p.id: true}
	for !known || len(answered)-1 < others {
		m, err := sub.NextMsgWithContext(wctx)
		if err != nil {
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
			return res, nil // waited long enough
		}
		var a presenceAnswer
		if len(m.Data) > maxPresenceAnswer || json.Unmarshal(m.Data, &a) != nil ||
			a.From == "" || len(a.From) > maxPresenceID || answered[a.From] || len(a.Streams) != len(topics) {
			continue
		}
		answered[a.From] = true
		for i, n := range a.Streams {
			res.Streams[i] += n
		}
		res.Gateways++
	}
	res.AllAnswered = true
	return res, nil
}

// presenceListeners returns how many gateways should answer a survey on subject, this one
// included, and whether the Bus can know: only when it embeds the server that holds the
// stream. It takes the larger of two counts, as each can fall short:
//   - the account's interest in subject: this server's subscriptions, and one per routed
//     server that has any. nats-server stops counting at the first level of its sublist
//     that matches, so that a wildcard subscription (">" of any client, with client auth
//     off) hides the others.
//   - the servers of the cluster: each embeds one gateway. Gateways that are clients of
//     a node, as of an external deployment, count only in the interest.
//
// A count too high costs a survey its whole wait; too low, it ends before every gateway
// has answered.
func (b *Bus) presenceListeners(subject string) (n int, known bool) {
	if b.ns == nil || !b.opts.embedsJetStream() {
		return 0, false
	}
	return max(b.ns.GlobalAccount().Interest(subject), 1+b.ns.NumRemotes()), true
}
