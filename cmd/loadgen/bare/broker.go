package main

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/natsse/natsse/sseformat"
)

var (
	errBadID  = errors.New("invalid event id")
	errClosed = errors.New("shutting down")
)

// broker keeps, per topic, the events published in memory and the streams subscribed,
// and hands each event, encoded once, to every stream of its topic. It is safe for
// concurrent use.
type broker struct {
	epoch   uint64 // tells this process's ids from an earlier one's
	queue   int    // events queued per stream before it is cut
	history int    // events kept per topic for resuming streams

	mu     sync.Mutex
	topics map[string]*topic
	closed chan struct{} // closed by close: streams end

	open atomic.Int64  // streams subscribed
	cut  atomic.Uint64 // streams cut for a full queue
}

// topic is one topic's sequence, recent events and streams. Events are numbered from 1;
// events holds the last few, encoded, ending with number seq.
type topic struct {
	mu     sync.Mutex
	seq    uint64
	events [][]byte
	subs   map[*subscriber]struct{}
}

func newBroker(epoch uint64, queue, history int) *broker {
	return &broker{
		epoch: epoch, queue: max(queue, 1), history: max(history, 1),
		topics: make(map[string]*topic), closed: make(chan struct{}),
	}
}

func (b *broker) topic(name string) *topic {
	b.mu.Lock()
	defer b.mu.Unlock()
	tp, ok := b.topics[name]
	if !ok {
		tp = &topic{subs: make(map[*subscriber]struct{})}
		b.topics[name] = tp
	}
	return tp
}

// publish numbers an event of topic name, encodes it once, keeps it and queues it for
// every stream of the topic, cutting those whose queue is full. It returns its id and
// number; it never waits for a stream.
func (b *broker) publish(name, typ string, data []byte) (id string, seq uint64) {
	tp := b.topic(name)
	tp.mu.Lock()
	defer tp.mu.Unlock()
	tp.seq++
	id = b.id(tp.seq)
	e := sseformat.Event{ID: id, Type: typ, Data: string(data)}
	frame := sseformat.AppendEvent(make([]byte, 0, sseformat.EncodedLen(e)), e)
	tp.events = append(tp.events, frame)
	if len(tp.events) >= 2*b.history {
		tp.events = slices.Clone(tp.events[len(tp.events)-b.history:])
	}
	for s := range tp.subs {
		if !s.push(frame) {
			delete(tp.subs, s)
			b.cut.Add(1)
		}
	}
	return id, tp.seq
}

// subscribed is a stream's place in a topic: what it must be sent before the events
// queued for it.
type subscribed struct {
	sub     *subscriber
	gap     bool     // the events after lastID are no longer all kept: backlog starts later
	backlog [][]byte // kept events after lastID, oldest first
}

// subscribe registers a stream of topic name, resuming after the event lastID ("": from
// the next event published). It fails for an id this broker did not send, or once the
// broker is closed.
func (b *broker) subscribe(name, lastID string) (subscribed, error) {
	var after uint64
	resume, sameEpoch := lastID != "", true
	if resume {
		epoch, seq, err := parseID(lastID)
		if err != nil {
			return subscribed{}, err
		}
		after, sameEpoch = seq, epoch == b.epoch
	}
	tp := b.topic(name)
	tp.mu.Lock()
	defer tp.mu.Unlock()
	select {
	case <-b.closed:
		return subscribed{}, errClosed
	default:
	}
	var sd subscribed
	if resume {
		oldest := tp.seq - uint64(len(tp.events)) + 1
		switch {
		case sameEpoch && after > tp.seq:
			return subscribed{}, errBadID
		case !sameEpoch || after+1 < oldest:
			sd.gap, sd.backlog = true, tp.events
		default:
			sd.backlog = tp.events[after+1-oldest:]
		}
	}
	sd.sub = newSubscriber(b.queue)
	tp.subs[sd.sub] = struct{}{}
	b.open.Add(1)
	return sd, nil
}

// unsubscribe removes a stream that subscribe registered on topic name.
func (b *broker) unsubscribe(name string, s *subscriber) {
	tp := b.topic(name)
	tp.mu.Lock()
	delete(tp.subs, s)
	tp.mu.Unlock()
	b.open.Add(-1)
}

// close makes every stream end and refuses new ones. It may be called more than once.
func (b *broker) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	select {
	case <-b.closed:
	default:
		close(b.closed)
	}
}

func (b *broker) id(seq uint64) string {
	return strconv.FormatUint(b.epoch, 36) + "-" + strconv.FormatUint(seq, 10)
}

// parseID reads an id as the broker writes it: "<epoch in base 36>-<number>".
func parseID(s string) (epoch, seq uint64, err error) {
	e, q, ok := strings.Cut(s, "-")
	epoch, err1 := strconv.ParseUint(e, 36, 64)
	seq, err2 := strconv.ParseUint(q, 10, 64)
	if !ok || err1 != nil || err2 != nil || q == "" || q[0] == '+' {
		return 0, 0, errBadID
	}
	return epoch, seq, nil
}
