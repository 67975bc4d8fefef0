package gateway

import (
	"bufio"
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
// nothing: the stream's writer already gathers its frames into one write per flush.
type connSink struct{ conn net.Conn }

var crlf = []byte("\r\n")

func (s connSink) Write(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil // a chunk of size 0 would end the body
	}
	var size [20]byte
	head := append(strconv.AppendInt(size[:0], int64(len(b)), 16), crlf...)
	if _, ok := s.conn.(*net.TCPConn); ok {
		bufs := net.Buffers{head, b, crlf} // one writev
		if _, err := bufs.WriteTo(s.conn); err != nil {
			return 0, err
		}
		return len(b), nil
	}
	// A TLS connection writes a record per call: one call, then.
	chunk := make([]byte, 0, len(head)+len(b)+len(crlf))
	if _, err := s.conn.Write(append(append(append(chunk, head...), b...), crlf...)); err != nil {
		return 0, err
	}
	return len(b), nil
}

func (s connSink) Flush() error                       { return nil }
func (s connSink) SetWriteDeadline(t time.Time) error { return s.conn.SetWriteDeadline(t) }

// finish ends the chunked body, so that the client sees the response complete.
func (s connSink) finish() error {
	_, err := s.conn.Write([]byte("0\r\n\r\n"))
	return err
}

// takeOver takes an HTTP/1.1 stream's connection from net/http and sends the response's
// status line and headers (those set on c.Writer so far, and the stream's own). From then on
// the stream writes its body to the connection itself, so that an idle stream holds neither
// net/http's goroutines nor its buffers (see parked.go). It returns nil, having sent nothing,
// when the connection cannot be taken over (HTTP/2, HTTP/1.0): the stream then goes on
// through net/http.
func takeOver(c *gin.Context) (net.Conn, error) {
	if c.Request.ProtoMajor != 1 || c.Request.ProtoMinor < 1 {
		return nil, nil
	}
	conn, _, err := http.NewResponseController(c.Writer).Hijack()
	if err != nil {
		return nil, nil // not an HTTP/1.1 connection of net/http's
	}
	// net/http's buffers are dropped with its reader: whatever the client sends after its
	// request is discarded (see stream.own).
	h := c.Writer.Header()
	setStreamHeaders(h)
	h.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	h.Set("Transfer-Encoding", "chunked")
	// The connection ends with the stream: it is never handed back for another request.
	h.Set("Connection", "close")
	head := bufio.NewWriterSize(conn, 512)
	head.WriteString("HTTP/1.1 200 OK\r\n")
	h.Write(head)
	head.Write(crlf)
	if err := head.Flush(); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}
