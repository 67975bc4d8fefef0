package gateway

import (
	"bytes"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
)

// sink is where a stream's bytes go: the HTTP response, or the connection itself once the
// stream has taken it over from net/http (see takeOver).
type sink interface {
	Write(b []byte) (int, error)
	Flush() error
	SetWriteDeadline(t time.Time) error
}

// responseSink writes through net/http: HTTP/2 streams, and HTTP/1.1 ones whose connection
// cannot be taken over.
type responseSink struct {
	w  gin.ResponseWriter
	rc *http.ResponseController
}

func (s responseSink) Write(b []byte) (int, error)        { return s.w.Write(b) }
func (s responseSink) Flush() error                       { return s.rc.Flush() }
func (s responseSink) SetWriteDeadline(t time.Time) error { return s.rc.SetWriteDeadline(t) }

// connSink writes a response body in HTTP/1.1 chunks straight to its connection. It buffers
// nothing: the stream's writer already gathers its frames into one write per flush. The
// response's head goes out with the first chunk.
type connSink struct {
	conn net.Conn
	head []byte // the status line and headers, until the first write sends them
}

var crlf = []byte("\r\n")

func (s *connSink) Write(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil // a chunk of size 0 would end the body
	}
	var size [20]byte
	if err := s.send(append(strconv.AppendInt(size[:0], int64(len(b)), 16), crlf...), b, crlf); err != nil {
		return 0, err
	}
	return len(b), nil
}

// send writes the head if it is still to go, then parts, in one call.
func (s *connSink) send(parts ...[]byte) error {
	if s.head != nil {
		parts = append([][]byte{s.head}, parts...)
		s.head = nil
	}
	if _, ok := s.conn.(*net.TCPConn); ok {
		bufs := net.Buffers(parts) // one writev
		_, err := bufs.WriteTo(s.conn)
		return err
	}
	// A TLS connection writes a record per call: one call, then.
	var n int
	for _, p := range parts {
		n += len(p)
	}
	all := make([]byte, 0, n)
	for _, p := range parts {
		all = append(all, p...)
	}
	_, err := s.conn.Write(all)
	return err
}

func (s *connSink) Flush() error                       { return nil }
func (s *connSink) SetWriteDeadline(t time.Time) error { return s.conn.SetWriteDeadline(t) }

// finish ends the chunked body, so that the client sees the response complete.
func (s *connSink) finish() error { return s.send([]byte("0\r\n\r\n")) }

// takeOver takes an HTTP/1.1 stream's connection from net/http. From then on the stream
// writes its response itself: the status line and headers (those set on c.Writer so far,
// and the stream's own) with its first bytes, then its body in chunks, so that an idle
// stream holds neither net/http's goroutines nor its buffers (see parked.go). It returns
// nil when the connection cannot be taken over (HTTP/2, HTTP/1.0): the stream then goes on
// through net/http.
func takeOver(c *gin.Context) *connSink {
	if c.Request.ProtoMajor != 1 || c.Request.ProtoMinor < 1 {
		return nil
	}
	// gin's Hijack panics when the writer beneath it cannot hijack (where the Handler is
	// served behind a wrapper of net/http's writer, say): that one is asked first.
	if u, ok := c.Writer.(interface{ Unwrap() http.ResponseWriter }); ok {
		if _, ok := u.Unwrap().(http.Hijacker); !ok {
			return nil
		}
	}
	conn, _, err := http.NewResponseController(c.Writer).Hijack()
	if err != nil {
		return nil // not an HTTP/1.1 connection of net/http's
	}
	// net/http's buffers are dropped with its reader: whatever the client sends after its
	// request is discarded (see stream.own).
	h := c.Writer.Header()
	setStreamHeaders(h)
	h.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	h.Set("Transfer-Encoding", "chunked")
	// The connection ends with the stream: it is never handed back for another request.
	h.Set("Connection", "close")
	head := bytes.NewBufferString("HTTP/1.1 200 OK\r\n")
	h.Write(head)
	head.Write(crlf)
	return &connSink{conn: conn, head: head.Bytes()}
}
