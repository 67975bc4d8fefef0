package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"time"
)

// poster is one kept-alive HTTP/1.1 connection that sends pre-built POST requests, one at
// a time, and reads only what it needs of each answer: the status line, Content-Length (or
// a chunked body) and the body. It costs a fraction of net/http's client, so that a
// publish load measures the server rather than its client. It is not safe for concurrent
// use.
type poster struct {
	addr string // host:port
	conn net.Conn
	r    *bufio.Reader
	body []byte // the last answer's body, reused
	// closing: the last answer said "Connection: close" (nginx does after
	// keepalive_requests): the next post dials again.
	closing bool
}

// dialPoster connects to base, an http:// URL, within ctx.
func dialPoster(ctx context.Context, base string) (*poster, error) {
	u, err := url.Parse(base)
	if err != nil || u.Scheme != "http" {
		return nil, fmt.Errorf("%q: want http://host:port", base)
	}
	p := &poster{addr: u.Host}
	if err := p.dial(ctx); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *poster) dial(ctx context.Context) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", p.addr)
	if err != nil {
		return err
	}
	p.conn, p.closing = conn, false
	if p.r == nil {
		p.r = bufio.NewReaderSize(conn, 4096)
	} else {
		p.r.Reset(conn)
	}
	return nil
}

// postRequest returns the bytes of a POST of body to the path of target, an absolute
// http:// URL, with the headers a publisher sends.
func postRequest(target string, body []byte) ([]byte, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	req := fmt.Appendf(nil, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: text/plain\r\nAccept: application/json\r\nContent-Length: %d\r\n\r\n",
		u.RequestURI(), u.Host, len(body))
	return append(req, body...), nil
}

// post sends req, a whole request, and returns the answer's status and body; the body is
// valid until the next post. An error means the connection is unusable. After an answer
// that closes the connection, it dials again within ctx.
func (p *poster) post(ctx context.Context, req []byte) (int, []byte, error) {
	if p.closing {
		p.conn.Close()
		if err := p.dial(ctx); err != nil {
			return 0, nil, err
		}
	}
	if _, err := p.conn.Write(req); err != nil {
		return 0, nil, err
	}
	line, err := p.r.ReadSlice('\n')
	if err != nil {
		return 0, nil, fmt.Errorf("reading the answer: %w", err)
	}
	// "HTTP/1.1 200 OK\r\n"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return 0, nil, fmt.Errorf("answer %q", bytes.TrimSpace(line))
	}
	status, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, nil, fmt.Errorf("answer %q", bytes.TrimSpace(line))
	}
	length, chunked := -1, false
	for {
		line, err = p.r.ReadSlice('\n')
		if err != nil {
			return 0, nil, fmt.Errorf("reading the answer's headers: %w", err)
		}
		h := bytes.TrimSpace(line)
		if len(h) == 0 {
			break
		}
		k, v, _ := bytes.Cut(h, []byte(":"))
		v = bytes.TrimSpace(v)
		switch {
		case bytes.EqualFold(k, []byte("Content-Length")):
			if length, err = strconv.Atoi(string(v)); err != nil || length < 0 {
				return 0, nil, fmt.Errorf("header %q", h)
			}
		case bytes.EqualFold(k, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(v, []byte("chunked"))
		case bytes.EqualFold(k, []byte("Connection")):
			p.closing = bytes.EqualFold(v, []byte("close"))
		}
	}
	switch {
	case chunked:
		err = p.readChunks()
	case length >= 0:
		p.body = append(p.body[:0], make([]byte, length)...)
		_, err = io.ReadFull(p.r, p.body)
	default:
		err = errors.New("answer without Content-Length on a kept-alive connection")
	}
	if err != nil {
		return 0, nil, fmt.Errorf("reading the answer's body: %w", err)
	}
	return status, p.body, nil
}

// readChunks reads a chunked body into p.body.
func (p *poster) readChunks() error {
	p.body = p.body[:0]
	for {
		line, err := p.r.ReadSlice('\n')
		if err != nil {
			return err
		}
		sz, _, _ := bytes.Cut(bytes.TrimSpace(line), []byte(";"))
		n, err := strconv.ParseUint(string(sz), 16, 31)
		if err != nil {
			return fmt.Errorf("chunk size %q", line)
		}
		if n == 0 {
			for { // trailers, up to the empty line
				if line, err = p.r.ReadSlice('\n'); err != nil || len(bytes.TrimSpace(line)) == 0 {
					return err
				}
			}
		}
		at := len(p.body)
		p.body = append(p.body, make([]byte, n+2)...) // the chunk and its CRLF
		if _, err := io.ReadFull(p.r, p.body[at:]); err != nil {
			return err
		}
		p.body = p.body[:len(p.body)-2]
	}
}

// close closes the connection.
func (p *poster) close() error { return p.conn.Close() }

// postCounts is what a batch of posts measured.
type postCounts struct {
	ok, failed int
	firstErr   error
	latencies  []time.Duration // of the posts answered 200
}

// add records a post's outcome: an answer that is not ok fails it.
func (c *postCounts) add(status int, ok bool, body []byte, err error, took time.Duration, url string) {
	if err == nil && !ok {
		err = fmt.Errorf("POST %s: status %d: %.200s", url, status, body)
	}
	if err != nil {
		c.failed++
		if c.firstErr == nil {
			c.firstErr = err
		}
		return
	}
	c.ok++
	c.latencies = append(c.latencies, took)
}

// merge adds o's counts to c's.
func (c *postCounts) merge(o postCounts) {
	c.ok += o.ok
	c.failed += o.failed
	if c.firstErr == nil {
		c.firstErr = o.firstErr
	}
	c.latencies = append(c.latencies, o.latencies...)
}
