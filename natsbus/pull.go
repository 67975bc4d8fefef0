package natsbus

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// maxNoResponders bounds the pull requests in a row that reach no consumer, each 20ms
// after the last: how long a new consumer may take to answer pulls.
const maxNoResponders = 100

// Errors of a puller's consumer.
var (
	errNoHeartbeat     = errors.New("natsbus: the consumer sent nothing, not even a heartbeat")
	errConsumerDeleted = errors.New("natsbus: the consumer was deleted")
)

// pullOptions say how a puller asks its consumer for messages.
type pullOptions struct {
	window int // messages asked for and not yet received, at most
	// maxBytes bounds one pull request's messages. It is raised to two of the largest
	// messages the server accepts: a request too small for the next message would stall
	// the consumer.
	maxBytes int
	// heartbeat is how often the server says it is there while it has nothing to send;
	// nothing at all for two of them is a stall.
	heartbeat time.Duration
	expires   time.Duration // how long a pull request waits for messages
}

// puller receives a consumer's messages through pull requests of its own, keeping a
// window of them in flight, so that the server sends the next messages while the Bus
// handles these. The window is also what keeps a consumer delivering while the stream is
// busy storing: the server sends a consumer's messages from the loop that stores new ones,
// between batches of them, so each turn carries at most what the consumer may send.
//
// It does what the jetstream package's pull iterators do, without their cost per
// message (a timer, a lock and allocations: about a sixth of a replay's CPU time).
//
// A puller is used by one goroutine at a time; stop ends it.
type puller struct {
	b       *Bus
	opts    pullOptions
	subject string // the consumer's API subject for pull requests
	inbox   string
	sub     *nats.Subscription
	msgs    chan *nats.Msg
	body    []byte // the last pull request's

	asked        int  // messages asked for and neither received nor given up by the server
	heard        bool // whether anything arrived since the watchdog last looked
	watchdog     *time.Timer
	noResponders int // pull requests in a row that reached no consumer
}

// pull starts a puller of cons's messages.
func (b *Bus) pull(cons jetstream.Consumer, opts pullOptions) (*puller, error) {
	info := cons.CachedInfo()
	opts.maxBytes = max(opts.maxBytes, 2*int(b.nc.MaxPayload()))
	p := &puller{
		b:       b,
		opts:    opts,
		subject: b.apiPrefix() + "CONSUMER.MSG.NEXT." + info.Stream + "." + info.Name,
		inbox:   b.nc.NewInbox(),
		// Room for every message asked for, and the statuses that end requests: a full
		// channel would drop messages.
		msgs: make(chan *nats.Msg, 2*opts.window+64),
	}
	var err error
	if p.sub, err = b.nc.ChanSubscribe(p.inbox, p.msgs); err != nil {
		return nil, fmt.Errorf("%w: subscribe: %w", ErrUnavailable, err)
	}
	p.watchdog = time.NewTimer(2 * opts.heartbeat)
	return p, nil
}

// stop ends the subscription. Messages in flight are dropped.
func (p *puller) stop() {
	p.watchdog.Stop()
	p.sub.Unsubscribe()
}

// ask sends a pull request for what the window has room for.
func (p *puller) ask() error {
	n := p.opts.window - p.asked
	p.body = fmt.Appendf(p.body[:0], `{"batch":%d,"max_bytes":%d,"expires":%d,"idle_heartbeat":%d}`,
		n, p.opts.maxBytes, p.opts.expires.Nanoseconds(), p.opts.heartbeat.Nanoseconds())
	if err := p.b.nc.PublishRequest(p.subject, p.inbox, p.body); err != nil {
		return fmt.Errorf("%w: pull: %w", ErrUnavailable, err)
	}
	p.asked += n
	return nil
}

// next returns the consumer's next message and what its reply subject says of it. It
// waits until one comes, ctx is done, the consumer fails (it was deleted, or it sent
// nothing for two heartbeats) or the Bus's connection closes.
func (p *puller) next(ctx context.Context) (*nats.Msg, ackMeta, error) {
	for {
		if p.asked <= p.opts.window/2 {
			if err := p.ask(); err != nil {
				return nil, ackMeta{}, err
			}
		}
		var m *nats.Msg
		select {
		case m = <-p.msgs:
		default:
			select {
			case m = <-p.msgs:
			case <-p.watchdog.C:
				if !p.heard {
					return nil, ackMeta{}, errNoHeartbeat
				}
				p.heard = false
				p.watchdog.Reset(2 * p.opts.heartbeat)
				continue
			case <-ctx.Done():
				return nil, ackMeta{}, ctx.Err()
			case <-p.b.ncClosed:
				return nil, ackMeta{}, fmt.Errorf("%w: the NATS connection closed", ErrClosed)
			}
		}
		p.heard = true
		if !strings.HasPrefix(m.Reply, "$JS.ACK.") { // the server's word on a pull request
			if err := p.status(ctx, m); err != nil {
				return nil, ackMeta{}, err
			}
			continue
		}
		p.asked--
		p.noResponders = 0
		md, ok := parseAckReply(m.Reply)
		if !ok {
			return m, md, fmt.Errorf("natsbus: not a consumer's message: reply subject %q", m.Reply)
		}
		return m, md, nil
	}
}

// status handles a message that says how a pull request went. (Unlike a status, every
// message a consumer delivers has a reply subject, for its acknowledgement: a stored
// message with a Status header of its own is no status.)
func (p *puller) status(ctx context.Context, m *nats.Msg) error {
	code, descr := m.Header.Get("Status"), strings.ToLower(m.Header.Get("Description"))
	switch {
	case code == "100": // a heartbeat
	case code == "408",
		code == "409" && (strings.Contains(descr, "message size exceeds maxbytes") || strings.Contains(descr, "batch completed")):
		// A request ended: what it did not deliver can be asked for again.
		left, _ := strconv.Atoi(m.Header.Get("Nats-Pending-Messages"))
		p.asked = max(p.asked-left, 0)
	case code == "409" && strings.Contains(descr, "consumer deleted"):
		return errConsumerDeleted
	case code == "409" && strings.Contains(descr, "leadership change"):
		p.asked = 0 // the new leader knows none of the requests
	case code == "503":
		// The request reached no consumer: one just created in a cluster may not answer
		// for a moment.
		if p.noResponders++; p.noResponders > maxNoResponders {
			return fmt.Errorf("%w: the consumer does not answer pull requests", ErrUnavailable)
		}
		p.asked = 0
		if !sleep(ctx, 20*time.Millisecond) {
			return ctx.Err()
		}
	default:
		return fmt.Errorf("%w: pull request: status %s %s", ErrUnavailable, code, m.Header.Get("Description"))
	}
	return nil
}

// ackMeta is what a consumer's message says of itself in its reply subject.
type ackMeta struct {
	streamSeq   uint64
	consumerSeq uint64    // the delivery's sequence, without holes
	pending     uint64    // the messages the consumer has yet to deliver
	stored      time.Time // when the stream stored the message
}

// parseAckReply parses a consumer's reply subject:
// $JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<time>.<pending>, or,
// from newer servers, $JS.ACK.<domain>.<account hash>.<stream>.<consumer>.<delivered>.<stream
// seq>.<consumer seq>.<time>.<pending>.<token>, where the token may be absent.
func parseAckReply(reply string) (ackMeta, bool) {
	var tokens [12]string
	n := 0
	for more := true; more && n < len(tokens); n++ {
		tokens[n], reply, more = strings.Cut(reply, ".")
	}
	var first int // the index of the stream's name
	switch {
	case tokens[0] != "$JS" || tokens[1] != "ACK":
		return ackMeta{}, false
	case n == 9:
		first = 2
	case n >= 11:
		first = 4
	default:
		return ackMeta{}, false
	}
	sseq, err1 := strconv.ParseUint(tokens[first+3], 10, 64)
	cseq, err2 := strconv.ParseUint(tokens[first+4], 10, 64)
	ts, err3 := strconv.ParseInt(tokens[first+5], 10, 64)
	pending, err4 := strconv.ParseUint(tokens[first+6], 10, 64)
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return ackMeta{}, false
	}
	return ackMeta{streamSeq: sseq, consumerSeq: cseq, pending: pending, stored: time.Unix(0, ts)}, true
}
