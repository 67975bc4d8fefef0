package e2e

import (
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// cutProxy is a TCP proxy in front of the gateway that a test can cut: cut closes every
// connection open through it at that moment, as a server killed mid-stream or a network
// failure would. Connections made after a cut are proxied as usual.
type cutProxy struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup

	mu       sync.Mutex
	pairs    map[*proxyPair]struct{}
	history  []*proxyPair
	accepted int
	closed   bool
}

// proxyPair is a client connection and the proxy's connection to the target for it.
type proxyPair struct {
	client, upstream net.Conn
	once             sync.Once
	up, down         atomic.Int64 // bytes copied to the target and back
	closed           atomic.Bool
}

func (p *proxyPair) close() {
	p.once.Do(func() {
		p.closed.Store(true)
		p.client.Close()
		p.upstream.Close()
	})
}

// startProxy listens on a random local port and forwards every connection to target
// (host:port). It is closed, with all its connections, when the test ends.
func startProxy(tb testing.TB, target string) *cutProxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("proxy: listen: %v", err)
	}
	p := &cutProxy{ln: ln, target: target, pairs: make(map[*proxyPair]struct{})}
	p.wg.Add(1)
	go p.accept()
	tb.Cleanup(p.close)
	return p
}

// base is the proxy's http://host:port.
func (p *cutProxy) base() string { return "http://" + p.ln.Addr().String() }

func (p *cutProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		p.mu.Lock()
		p.accepted++
		p.mu.Unlock()
		p.wg.Add(1)
		go p.serve(c)
	}
}

// serve connects c to the target and copies both ways until either side ends or the
// proxy cuts them. A target that cannot be reached closes c at once, as a refused
// connection would end a browser's request.
func (p *cutProxy) serve(c net.Conn) {
	defer p.wg.Done()
	up, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		c.Close()
		return
	}
	pair := &proxyPair{client: c, upstream: up}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		pair.close()
		return
	}
	p.pairs[pair] = struct{}{}
	p.history = append(p.history, pair)
	p.mu.Unlock()

	done := make(chan struct{})
	go func() {
		io.Copy(counter{up, &pair.up}, c)
		pair.close()
		close(done)
	}()
	io.Copy(counter{c, &pair.down}, up)
	pair.close()
	<-done
	p.mu.Lock()
	delete(p.pairs, pair)
	p.mu.Unlock()
}

// counter counts the bytes written to w.
type counter struct {
	w io.Writer
	n *atomic.Int64
}

func (c counter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n.Add(int64(n))
	return n, err
}

// cut closes every connection open through the proxy and returns how many there were.
func (p *cutProxy) cut() int {
	p.mu.Lock()
	pairs := make([]*proxyPair, 0, len(p.pairs))
	for pair := range p.pairs {
		pairs = append(pairs, pair)
		delete(p.pairs, pair)
	}
	p.mu.Unlock()
	for _, pair := range pairs {
		pair.close()
	}
	return len(pairs)
}

// proxyCounts counts a proxy's connections.
type proxyCounts struct {
	accepted int // in all
	open     int // open now
	answered int // open now, and the target has sent bytes on them
}

func (p *cutProxy) counts() proxyCounts {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := proxyCounts{accepted: p.accepted, open: len(p.pairs)}
	for pair := range p.pairs {
		if pair.down.Load() > 0 {
			c.answered++
		}
	}
	return c
}

// String describes the proxy's connections, for failure messages.
func (p *cutProxy) String() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "proxy %s: %d connections accepted, %d open", p.ln.Addr(), p.accepted, len(p.pairs))
	for i, pair := range p.history {
		fmt.Fprintf(&b, "\n  %d: %s, %d bytes up, %d down, closed %v", i, pair.client.RemoteAddr(), pair.up.Load(), pair.down.Load(), pair.closed.Load())
	}
	return b.String()
}

// close stops listening, cuts every connection and waits for the proxy's goroutines.
func (p *cutProxy) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.ln.Close()
	p.cut()
	p.wg.Wait()
}
