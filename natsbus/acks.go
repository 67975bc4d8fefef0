package natsbus

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// acks sends messages to the stream and hands each publisher the stream's
// acknowledgement of its message. Up to maxPublishesInFlight messages await theirs at
// once, all answered on one subscription: each in-flight message has a slot, whose reply
// subject (the subscription's prefix and the slot's number) says whose answer is whose.
// A slot is reused once its answer came; a slot given up on before its answer came is
// retired, and a slot with a new number takes its place, so that a late answer is never
// taken for another message's. The slots and their messages are reused: a publish
// allocates nothing of its own. It is safe for concurrent use.
type acks struct {
	free chan *ackSlot // the slots not in flight

	mu     sync.Mutex
	prefix string              // of the reply subjects: an inbox and a dot
	slots  map[uint64]*ackSlot // every slot by number, in flight or not
	next   uint64              // the number of the next new slot
	sub    *nats.Subscription
}

// ackSlot is one message in flight and the answer it gets.
type ackSlot struct {
	num      uint64
	reply    string
	msg      nats.Msg    // reused for each message the slot sends
	answer   chan answer // buffered: answers are never waited for
	timer    *time.Timer // stopped but while its message awaits an answer with a timeout
	inFlight bool        // under acks.mu: sent, not answered nor given up on
	// retired: answered by failAll and out of acks.slots, as its real answer may still
	// come. Set before the answer is sent, read after it is received.
	retired bool
}

// answer is the stream's answer to a message, or the error that stands for it.
type answer struct {
	seq       uint64
	duplicate bool
	err       error
}

// newAcks returns acks with its slots made; listen starts it.
func newAcks() *acks {
	return &acks{free: make(chan *ackSlot, maxPublishesInFlight), slots: make(map[uint64]*ackSlot, maxPublishesInFlight)}
}

// listen subscribes to the answers on nc and makes the slots.
func (a *acks) listen(nc *nats.Conn) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.prefix = nc.NewInbox() + "."
	sub, err := nc.Subscribe(a.prefix+"*", a.receive)
	if err != nil {
		return err
	}
	a.sub = sub
	for range maxPublishesInFlight {
		a.free <- a.newSlotLocked()
	}
	return nil
}

func (a *acks) newSlotLocked() *ackSlot {
	s := &ackSlot{num: a.next, reply: a.prefix + strconv.FormatUint(a.next, 10), answer: make(chan answer, 1), timer: time.NewTimer(time.Hour)}
	s.timer.Stop()
	a.next++
	a.slots[s.num] = s
	return s
}

// send publishes m's subject, header and data with a reply subject of its own and waits
// for the stream's answer, until ctx is done, closed is closed (ErrClosed), or, with a
// positive timeout, the answer is that late (jetstream.ErrAsyncPublishTimeout). It waits
// for a free slot first while maxPublishesInFlight messages are in flight: that wait
// counts in timeout (jetstream.ErrTooManyStalledMsgs when it takes all of it).
func (a *acks) send(ctx context.Context, closed <-chan struct{}, nc *nats.Conn, m *nats.Msg, timeout time.Duration) (answer, error) {
	var s *ackSlot
	select {
	case s = <-a.free:
	default:
		var err error
		if s, timeout, err = a.wait(ctx, closed, timeout); err != nil {
			return answer{}, err
		}
	}
	s.msg = nats.Msg{Subject: m.Subject, Reply: s.reply, Header: m.Header, Data: m.Data}
	a.mu.Lock()
	s.inFlight = true
	a.mu.Unlock()
	if err := nc.PublishMsg(&s.msg); err != nil {
		a.giveUp(s)
		return answer{}, err
	}
	var expired <-chan time.Time
	if timeout > 0 {
		s.timer.Reset(timeout)
		expired = s.timer.C
	}
	var ans answer
	var err error
	answered := false
	select {
	case ans = <-s.answer:
		answered, err = true, ans.err
	case <-ctx.Done():
		err = ctx.Err()
	case <-closed:
		err = ErrClosed
	case <-expired:
		err = jetstream.ErrAsyncPublishTimeout
	}
	// Stopped before the slot is free for another publish. (Since Go 1.23, a stopped
	// timer's channel holds no stale value.)
	s.timer.Stop()
	if answered {
		a.release(s)
	} else {
		a.giveUp(s)
	}
	return ans, err
}

// wait waits for a free slot, at most timeout if positive (then it returns
// jetstream.ErrTooManyStalledMsgs), and returns it with what is left of timeout.
func (a *acks) wait(ctx context.Context, closed <-chan struct{}, timeout time.Duration) (*ackSlot, time.Duration, error) {
	var expired <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		expired = t.C
	}
	began := time.Now()
	select {
	case s := <-a.free:
		if timeout > 0 {
			timeout = max(timeout-time.Since(began), time.Nanosecond)
		}
		return s, timeout, nil
	case <-ctx.Done():
		return nil, 0, ctx.Err()
	case <-closed:
		return nil, 0, ErrClosed
	case <-expired:
		return nil, 0, jetstream.ErrTooManyStalledMsgs
	}
}

// release returns s, answered, to the free slots, or a new slot in its place if it is
// retired.
func (a *acks) release(s *ackSlot) {
	s.msg = nats.Msg{}
	if s.retired {
		a.mu.Lock()
		s = a.newSlotLocked()
		a.mu.Unlock()
	}
	a.free <- s
}

// giveUp frees s, whose answer its publisher no longer waits for: retired, with a new
// slot in its place, while the answer may still come; as it is if it came meanwhile.
func (a *acks) giveUp(s *ackSlot) {
	a.mu.Lock()
	if !s.inFlight {
		a.mu.Unlock()
		<-s.answer // it came meanwhile
		a.release(s)
		return
	}
	s.inFlight = false
	delete(a.slots, s.num)
	n := a.newSlotLocked()
	a.mu.Unlock()
	a.free <- n
}

// answerLocked hands s its answer, if it is in flight.
func (a *acks) answerLocked(s *ackSlot, ans answer) {
	if s == nil || !s.inFlight {
		return
	}
	s.inFlight = false
	s.answer <- ans
}

// receive takes an answer on the subscription.
func (a *acks) receive(m *nats.Msg) {
	num, err := strconv.ParseUint(m.Subject[min(len(a.prefix), len(m.Subject)):], 10, 64)
	if err != nil {
		return
	}
	ans := parseAnswer(m)
	a.mu.Lock()
	a.answerLocked(a.slots[num], ans)
	a.mu.Unlock()
}

// failAll answers every message in flight with err, and retires their slots: after a
// disconnection, their answers may never come, or come late.
func (a *acks) failAll(err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, s := range a.slots {
		if s.inFlight {
			// The answer may come after all, once reconnected: to no slot.
			s.retired = true
			delete(a.slots, s.num)
			a.answerLocked(s, answer{err: err})
		}
	}
}

// The header of a status message, and the status of "no responders".
const (
	statusHeader = "Status"
	noResponders = "503"
)

// parseAnswer reads the stream's answer to a publish: a PubAck, an API error, or "no
// responders" (no server has the stream).
func parseAnswer(m *nats.Msg) answer {
	if len(m.Data) == 0 && m.Header.Get(statusHeader) == noResponders {
		return answer{err: jetstream.ErrNoStreamResponse}
	}
	// The usual answer, {"stream":"NATSSE","seq":12} (perhaps with a domain before the
	// sequence), is read without decoding JSON; anything else is decoded.
	d := m.Data
	if i := bytes.Index(d, []byte(`,"seq":`)); i > 0 && bytes.HasPrefix(d, []byte(`{"stream":"`)) && !bytes.Contains(d[:i], []byte(`"error"`)) {
		var seq uint64
		digits := d[i+len(`,"seq":`):]
		n := 0
		for ; n < len(digits) && n < 19 && '0' <= digits[n] && digits[n] <= '9'; n++ { // 19 digits fit in a uint64
			seq = seq*10 + uint64(digits[n]-'0')
		}
		if n > 0 && seq > 0 && string(digits[n:]) == "}" {
			return answer{seq: seq}
		}
	}
	var r struct {
		Error     *jetstream.APIError `json:"error"`
		Stream    string              `json:"stream"`
		Seq       uint64              `json:"seq"`
		Duplicate bool                `json:"duplicate"`
	}
	switch err := json.Unmarshal(d, &r); {
	case err != nil:
		return answer{err: jetstream.ErrInvalidJSAck}
	case r.Error != nil:
		return answer{err: r.Error}
	case r.Stream == "":
		return answer{err: jetstream.ErrInvalidJSAck}
	}
	return answer{seq: r.Seq, duplicate: r.Duplicate}
}
