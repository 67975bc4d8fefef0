package natsbus

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"
)

// presenceSubjectPrefix starts the subject on which the gateways of a stream answer
// presence surveys: "_NATSSE.presence.<stream>". It lies outside the topic prefix, so that
// NATS clients with tokens, which may only use "<prefix>.<their grants>" and inboxes, can
// neither ask nor answer.
const presenceSubjectPrefix = "_NATSSE.presence."

// MaxSurveyTopics is the most topics one presence survey may carry.
const MaxSurveyTopics = 256

// Bounds of the messages of a survey. A request holds up to MaxSurveyTopics topics of up
// to MaxTopicLen bytes, which JSON may escape up to six times over; an answer holds an id
// and a number per topic.
const (
	maxPresenceRequest = 512 << 10
	maxPresenceAnswer  = 16 << 10
	maxPresenceID      = 64
	presenceQueue      = 64 // requests waiting for the responder; more are dropped by NATS
)

// presenceRequest is a survey's question to every gateway of the stream.
type presenceRequest struct {
	From   string   `json:"from"` // the id of the asking Presence, which does not answer itself
	Topics []string `json:"topics"`
}

// presenceAnswer is one gateway's answer: its streams on each topic of the request, in
// its order.
type presenceAnswer struct {
	From    string   `json:"from"`
	Streams []uint64 `json:"streams"`
}

// PresenceCounter counts this gateway's streams that an event on each topic would reach,
// one count per topic, in their order. It must be safe for concurrent use and quick.
type PresenceCounter func(topics []string) []uint64

// Presence answers the presence surveys of the other gateways that share the stream, and
// surveys them. See the package doc for its goroutine.
type Presence struct {
	b       *Bus
	id      string
	subject string
	count   PresenceCounter
	sub     *nats.Subscription
	msgs    chan *nats.Msg

	closeOnce sync.Once
	stop      chan struct{}
	done      chan struct{}
}

// ServePresence starts answering presence surveys with count, on one goroutine, until the
// Presence is closed. When it returns, the server counts this gateway among those that
// answer.
func (b *Bus) ServePresence(count PresenceCounter) (*Presence, error) {
	p := &Presence{
		b:       b,
		id:      nuid.Next(),
		subject: presenceSubjectPrefix + b.opts.Stream,
		count:   count,
		msgs:    make(chan *nats.Msg, presenceQueue),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	sub, err := b.nc.ChanSubscribe(p.subject, p.msgs)
	if err == nil {
		// Once the server has the subscription, surveys count this gateway.
		if err = b.nc.FlushTimeout(10 * time.Second); err != nil {
			sub.Unsubscribe()
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%w: presence: %w", ErrUnavailable, err)
	}
	p.sub = sub
	go p.run()
	return p, nil
}

// Close stops answering surveys and blocks until the Presence's goroutine has returned
// (count is not running and will not be called again by it). Close is idempotent.
func (p *Presence) Close() error {
	p.closeOnce.Do(func() {
		if err := p.sub.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			p.b.log.Debug("presence: unsubscribe", "err", err)
		}
		close(p.stop)
	})
	<-p.done
	return nil
}

// run answers requests until the Presence or its Bus closes.
func (p *Presence) run() {
	defer close(p.done)
	for {
		select {
		case <-p.stop:
			return
		case <-p.b.closed:
			return
		case m := <-p.msgs:
			p.answer(m)
		}
	}
}

// answer replies to a well-formed request of another Presence; anything else is ignored.
func (p *Presence) answer(m *nats.Msg) {
	if m.Reply == "" || len(m.Data) > maxPresenceRequest {
		return
	}
	var req presenceRequest
	if err := json.Unmarshal(m.Data, &req); err != nil || req.From == p.id || validSurvey(req.From, req.Topics) != nil {
		return
	}
	streams := p.count(req.Topics)
	if len(streams) != len(req.Topics) {
		return
	}
	data, err := json.Marshal(presenceAnswer{From: p.id, Streams: streams})
	if err != nil {
		return
	}
	if err := p.b.nc.Publish(m.Reply, data); err != nil {
		p.b.log.Debug("presence: cannot answer", "err", err)
	}
}

// validSurvey checks the asker's id and the topics of a survey.
func validSurvey(from string, topics []string) error {
	switch {
	case from == "" || len(from) > maxPresenceID:
		return errors.New("natsbus: presence: bad id")
	case len(topics) == 0:
		return errors.New("natsbus: presence: no topic")
	case len(topics) > MaxSurveyTopics:
		return fmt.Errorf("natsbus: presence: %d topics, at most %d", len(topics), MaxSurveyTopics)
	}
	for _, t := range topics {
		if err := ValidateTopic(t); err != nil {
			return err
		}
	}
	return nil
}
