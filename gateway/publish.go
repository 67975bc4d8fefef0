package gateway

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/gin-gonic/gin"
	"github.com/natsse/natsse/natsbus"
	"github.com/natsse/natsse/sseformat"
)

// HeaderIdempotencyKey makes a retried HTTP publish store its event once.
const HeaderIdempotencyKey = "Idempotency-Key"

// publishResponse is the answer to a publish, as appendPublished writes it.
type publishResponse struct {
	ID        string `json:"id"`        // the SSE id the event carries
	Topic     string `json:"topic"`     // the topic it was published on
	Seq       uint64 `json:"seq"`       // its stream sequence
	Duplicate bool   `json:"duplicate"` // an earlier publish with the same Idempotency-Key stored it
}

func (g *Gateway) handlePublish(c *gin.Context) {
	began := time.Now()
	// Who may publish where, and how often, is settled before the body is read.
	topic := strings.TrimPrefix(c.Param("topic"), "/")
	gr, err := g.grants(c, publishTokens)
	if err == nil {
		err = natsbus.ValidateTopic(topic)
	}
	if err == nil {
		err = authorizePublish(gr, topic)
	}
	if err == nil && g.limits.rate > 0 {
		if wait, ok := g.limits.allowPublish(g.limits.client(c.Request, gr)); !ok {
			c.Header("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
			err = wrapf(errRateLimited, "over %g publishes per second: retry in %s", g.opts.PublishRate, wait.Round(time.Millisecond))
		}
	}
	buf := publishBuffers.Get().(*[]byte)
	defer putPublishBuffer(buf)
	var p natsbus.Publication
	if err == nil {
		p, err = g.parsePublish(c, topic, buf)
	}
	if err != nil {
		g.metrics.publishes.WithLabelValues(g.writeError(c, err)).Inc()
		return
	}
	res, err := g.bus.PublishWithin(c.Request.Context(), p, g.opts.PublishTimeout)
	if err != nil {
		g.metrics.publishes.WithLabelValues(g.writeError(c, err)).Inc()
		return
	}
	now := time.Now()
	g.metrics.publishedOK.Inc()
	g.metrics.publishDuration.Observe(now.Sub(began).Seconds())
	h := c.Writer.Header()
	h["Content-Type"] = jsonContentType
	h["Date"] = g.dates.header(now)
	c.Status(http.StatusOK)
	// The body is stored: its buffer takes the answer.
	*buf = appendPublished((*buf)[:0], g.bus.Epoch(), p.Topic, res)
	_, _ = c.Writer.Write(*buf)
}

// jsonContentType is the Content-Type of a JSON answer.
var jsonContentType = []string{"application/json; charset=utf-8"}

// publishBuffers holds the buffers that publishes read their bodies into, then write their
// answers from.
var publishBuffers = sync.Pool{New: func() any { return new([]byte) }}

// maxPooledBuffer is the largest buffer kept for another publish.
const maxPooledBuffer = 64 << 10

func putPublishBuffer(buf *[]byte) {
	if cap(*buf) <= maxPooledBuffer {
		*buf = (*buf)[:0]
		publishBuffers.Put(buf)
	}
}

// appendPublished appends the publishResponse of res, on topic in the stream of epoch, as
// JSON.
func appendPublished(dst []byte, epoch uint64, topic string, res natsbus.PublishResult) []byte {
	dst = append(dst, `{"id":"`...)
	dst = appendID(dst, position{epoch: epoch, seq: res.Seq})
	dst = append(dst, `","topic":`...)
	dst = appendJSONString(dst, topic)
	dst = append(dst, `,"seq":`...)
	dst = strconv.AppendUint(dst, res.Seq, 10)
	dst = append(dst, `,"duplicate":`...)
	dst = strconv.AppendBool(dst, res.Duplicate)
	return append(dst, '}')
}

// appendJSONString appends s as a JSON string, as encoding/json writes it.
func appendJSONString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			b, _ := json.Marshal(s)
			return append(dst, b...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}

// msgID is the stream's deduplication id of an HTTP publish with an Idempotency-Key: the
// key within its topic, so that publishers on different topics never drop each other's
// events by choosing the same key. "" without a key.
func msgID(topic, key string) string {
	if key == "" {
		return ""
	}
	sum := sha256.Sum256([]byte("natsse-http\x00" + topic + "\x00" + key))
	return "h" + hex.EncodeToString(sum[:16])
}

// parsePublish reads a publish on topic, a valid topic: its parameters and its body, into
// buf (grown as needed).
func (g *Gateway) parsePublish(c *gin.Context, topic string, buf *[]byte) (natsbus.Publication, error) {
	p := natsbus.Publication{Topic: topic}
	if c.Request.URL.RawQuery != "" {
		q := c.Request.URL.Query()
		if err := checkParams(q, "event", accessTokenParam); err != nil {
			return p, err
		}
		p.Type = q.Get("event")
	}
	if err := sseformat.ValidateType(p.Type); err != nil {
		return p, err
	}
	if reservedType(p.Type) {
		return p, wrapf(sseformat.ErrInvalidType, "event type %q is reserved for the gateway's own notices", p.Type)
	}
	if t := p.Type; t != "" && (strings.IndexByte(" \t", t[0]) >= 0 || strings.IndexByte(" \t", t[len(t)-1]) >= 0) {
		// NATS headers trim them: the event would be stored with another type.
		return p, wrapf(sseformat.ErrInvalidType, "event type %q: a leading or trailing space or tab", truncate(t, 64))
	}
	key := c.GetHeader(HeaderIdempotencyKey)
	if len(key) > 256 || strings.ContainsAny(key, "\r\n") {
		return p, wrapf(errBadRequest, "%s header: at most 256 bytes on one line", HeaderIdempotencyKey)
	}
	p.MsgID = msgID(p.Topic, key)
	body, err := readBody(c, g.opts.MaxEventBytes, buf)
	if err != nil {
		return p, err
	}
	if !utf8.Valid(body) {
		return p, wrapf(sseformat.ErrInvalidData, "body is not valid UTF-8 text")
	}
	p.Data = body
	// The body, not copied: EncodedLen only reads it.
	data := unsafe.String(unsafe.SliceData(body), len(body))
	size := sseformat.EncodedLen(sseformat.Event{ID: longestID, Type: p.Type, Data: data})
	if size > g.opts.MaxEventBytes {
		return p, wrapf(errTooLarge, "the encoded event would be %d bytes, over the limit of %d (each line of data costs 7 bytes more)", size, g.opts.MaxEventBytes)
	}
	return p, nil
}

// longestID is as long as the longest SSE id the gateway issues.
var longestID = strings.Repeat("0", maxIDLen)

// readBody reads a request body of at most limit bytes into *buf, grown to its announced
// length, or as it comes when the length is not announced, and returns it.
func readBody(c *gin.Context, limit int, buf *[]byte) ([]byte, error) {
	r := c.Request
	tooLarge := func() error { return wrapf(errTooLarge, "body over %d bytes", limit) }
	if r.ContentLength > int64(limit) {
		return nil, tooLarge()
	}
	body := (*buf)[:0]
	if r.ContentLength > 0 {
		body = slices.Grow(body, int(r.ContentLength)+1) // and room to read the end
	}
	var err error
	for len(body) <= limit { // up to one byte over the limit, or the end
		if len(body) == cap(body) {
			body = slices.Grow(body, min(max(512, len(body)), limit+1-len(body)))
		}
		var n int
		n, err = r.Body.Read(body[len(body):cap(body)])
		body = body[:len(body)+n]
		if err != nil {
			break
		}
	}
	*buf = body
	switch {
	case len(body) > limit:
		return nil, tooLarge()
	case err != io.EOF:
		return nil, wrapf(errBadRequest, "reading body: %v", err)
	}
	// Read to its end and closed, the body needs no draining before the answer.
	_ = r.Body.Close()
	return body, nil
}
