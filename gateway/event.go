package gateway

import (
	"encoding/json"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/natsse/natsse/natsbus"
	"github.com/natsse/natsse/sseformat"
)

// The reserved SSE event types of the gateway's own notices: a gap in what a stream can
// deliver, and the end of a stream whose token expired. Events stored with either go out as
// plain messages, and an HTTP publish may not use them.
const (
	GapEventType          = "gap"
	TokenExpiredEventType = "token_expired"
)

// reservedType reports whether t is one of the gateway's own event types.
func reservedType(t string) bool { return t == GapEventType || t == TokenExpiredEventType }

// event is one stream message, encoded once. Its frames are shared, read-only, by every
// connection that receives it.
type event struct {
	seq    uint64
	topic  string
	typ    string
	data   string
	stored time.Time // when the stream stored it
	frame  []byte    // the SSE event

	envOnce sync.Once
	env     []byte // the SSE event with the enveloped data, built on first use
	epoch   uint64
}

// newEvent encodes m. Data that is not valid UTF-8 has each bad byte sequence replaced by
// U+FFFD (what browsers would show); an event type that cannot be sent has its forbidden
// characters replaced the same way, and the reserved type "gap" is dropped (the event goes
// out as a plain message). sanitized reports whether any of that happened.
func newEvent(epoch uint64, m natsbus.Message) (ev *event, sanitized bool) {
	data, typ, sanitized := outgoing(m)
	ev = &event{seq: m.Seq, topic: m.Topic, typ: typ, data: data, stored: m.Time, epoch: epoch}
	ev.frame = ev.encode(data)
	return ev, sanitized
}

// appendStored appends to dst the frame that newEvent(epoch, m).frameFor(envelope) holds,
// without building the event: what a replay writes. sanitized is newEvent's.
func appendStored(dst []byte, epoch uint64, m natsbus.Message, envelope bool) (_ []byte, sanitized bool) {
	data, typ, sanitized := outgoing(m)
	if envelope {
		data = envelopeData(m.Topic, typ, data)
	}
	return appendFrame(dst, position{epoch: epoch, seq: m.Seq}, typ, data), sanitized
}

// outgoing returns m's data and type as they are sent: see newEvent. The data shares m's
// bytes when it needs no repair (a Message's Data is never modified).
func outgoing(m natsbus.Message) (data, typ string, sanitized bool) {
	data = unsafe.String(unsafe.SliceData(m.Data), len(m.Data))
	if !utf8.ValidString(data) {
		data, sanitized = strings.ToValidUTF8(data, "\uFFFD"), true
	}
	typ = m.Type
	switch {
	case reservedType(typ): // only the gateway sends its notices
		typ, sanitized = "", true
	case sseformat.ValidateType(typ) != nil:
		typ, sanitized = sanitizeType(typ), true
	}
	return data, typ, sanitized
}

func sanitizeType(t string) string {
	t = strings.ToValidUTF8(t, "\uFFFD")
	return strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' || r == 0 {
			return '\uFFFD'
		}
		return r
	}, t)
}

func (e *event) encode(data string) []byte {
	p := position{epoch: e.epoch, seq: e.seq}
	var idBuf [maxIDLen]byte
	n := len("id: \n") + len(appendID(idBuf[:0], p)) + sseformat.EncodedLen(sseformat.Event{Type: e.typ, Data: data})
	return appendFrame(make([]byte, 0, n), p, e.typ, data)
}

// appendFrame appends the SSE event with id p, type typ and data: what sseformat.AppendEvent
// writes, with the id written in place.
func appendFrame(dst []byte, p position, typ, data string) []byte {
	dst = append(dst, "id: "...)
	dst = appendID(dst, p)
	dst = append(dst, '\n')
	return sseformat.AppendEvent(dst, sseformat.Event{Type: typ, Data: data})
}

// envelope is the data of an event sent to a connection that asked for envelopes.
type envelope struct {
	Topic string `json:"topic"`
	Type  string `json:"type,omitempty"`
	Data  string `json:"data"`
}

// envelopeFrame returns the event with its data wrapped in a JSON envelope that names the
// topic. It is built once, on first use.
func (e *event) envelopeFrame() []byte {
	e.envOnce.Do(func() { e.env = e.encode(envelopeData(e.topic, e.typ, e.data)) })
	return e.env
}

// envelopeData returns the data of an enveloped event.
func envelopeData(topic, typ, data string) string {
	b, _ := json.Marshal(envelope{Topic: topic, Type: typ, Data: data})
	return unsafe.String(unsafe.SliceData(b), len(b))
}

func (e *event) frameFor(envelope bool) []byte {
	if envelope {
		return e.envelopeFrame()
	}
	return e.frame
}
