package gateway

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// BenchmarkHTTPPublishParallel measures stored HTTP publishes from 32 concurrent
// publishers, each on a keep-alive connection of its own, without rate limit. The
// publishers write pre-built requests and read the answers without allocating, so that
// allocs/op are the server's. It reports publishes per second: each counted publish was
// answered 200, so stored.
func BenchmarkHTTPPublishParallel(b *testing.B) {
	const publishers = 32
	e := newTestEnv(b, func(o *Options) { o.PublishRate = 0 }, nil)
	u, err := url.Parse(e.srv.URL)
	if err != nil {
		b.Fatal(err)
	}
	payload := strings.Repeat("x", 128)
	req := []byte(fmt.Sprintf("POST /publish/bench.parallel HTTP/1.1\r\nHost: %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s", u.Host, len(payload), payload))
	conns := make([]net.Conn, publishers)
	for i := range conns {
		if conns[i], err = net.Dial("tcp", u.Host); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { conns[i].Close() })
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ReportAllocs()
	b.ResetTimer()
	for _, conn := range conns {
		wg.Go(func() {
			r := bufio.NewReader(conn)
			for next.Add(1) <= int64(b.N) {
				if _, err := conn.Write(req); err != nil {
					b.Error(err)
					return
				}
				if err := readOK(r); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "publishes/s")
}

// readOK reads an HTTP/1.1 answer with a Content-Length from r, and fails unless it is
// 200. It allocates only on failure.
func readOK(r *bufio.Reader) error {
	line, err := r.ReadSlice('\n')
	if err != nil {
		return err
	}
	if !bytes.HasPrefix(line, []byte("HTTP/1.1 200 ")) {
		return fmt.Errorf("answer %q", line)
	}
	length := -1
	for {
		if line, err = r.ReadSlice('\n'); err != nil {
			return err
		}
		if len(bytes.TrimSpace(line)) == 0 {
			break
		}
		if v, ok := bytes.CutPrefix(line, []byte("Content-Length: ")); ok {
			length = 0
			for _, c := range bytes.TrimSpace(v) {
				if c < '0' || c > '9' {
					return fmt.Errorf("header %q", line)
				}
				length = 10*length + int(c-'0')
			}
		}
	}
	if length < 0 {
		return fmt.Errorf("answer without Content-Length")
	}
	_, err = r.Discard(length)
	return err
}
