// Command pubload measures a running gateway's HTTP publish rate: -conns publishers, each
// on a keep-alive connection of its own with one publish in flight, publish as fast as
// they are answered for -duration, with nobody listening. Every publish must be answered
// 200 with the stored event's sequence. It reports publishes per second, latencies and —
// given the gateway's -pid — the gateway's CPU time per publish.
//
// It speaks HTTP/1.1 itself, so that the publishers take little of the machine's CPU from
// the gateway they measure.
//
//	go run ./cmd/loadgen/pubload -url http://127.0.0.1:8080 -conns 32 -duration 10s -pid $(pgrep gateway)
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

type options struct {
	url      string
	conns    int
	duration time.Duration
	warmup   time.Duration
	size     int
	topic    string
	keys     bool
	pid      int
}

func main() {
	var o options
	flag.StringVar(&o.url, "url", "http://127.0.0.1:8080", "the gateway's base URL (http only)")
	flag.IntVar(&o.conns, "conns", 32, "concurrent publishers, each on a keep-alive connection")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "how long to measure")
	flag.DurationVar(&o.warmup, "warmup", time.Second, "how long to publish before measuring")
	flag.IntVar(&o.size, "size", 128, "bytes of data per event")
	flag.StringVar(&o.topic, "topic", "load.publish", "the topic published on")
	flag.BoolVar(&o.keys, "keys", false, "send an Idempotency-Key with every publish")
	flag.IntVar(&o.pid, "pid", 0, "the gateway's process id, to report its CPU time per publish (Linux)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "pubload:", err)
		os.Exit(1)
	}
}

// publisher is one connection's publishes and what they measured.
type publisher struct {
	conn      net.Conn
	r         *bufio.Reader
	body      []byte          // the last answer's body
	latencies []time.Duration // of the publishes in the measured interval
	err       error
}

func run(ctx context.Context, o options) error {
	u, err := url.Parse(o.url)
	if err != nil || u.Scheme != "http" {
		return fmt.Errorf("-url %q: want http://host:port", o.url)
	}
	pubs := make([]*publisher, o.conns)
	for i := range pubs {
		conn, err := net.Dial("tcp", u.Host)
		if err != nil {
			return err
		}
		defer conn.Close()
		pubs[i] = &publisher{conn: conn, r: bufio.NewReader(conn)}
	}
	start := time.Now()
	from, until := start.Add(o.warmup), start.Add(o.warmup+o.duration)
	var cpuBefore time.Duration
	var wg sync.WaitGroup
	for i, p := range pubs {
		wg.Go(func() { p.err = p.run(ctx, u, o, i, from, until) })
	}
	select {
	case <-time.After(time.Until(from)):
		cpuBefore = cpuTime(o.pid)
	case <-ctx.Done():
	}
	wg.Wait()
	elapsed := time.Since(from)
	cpuAfter := cpuTime(o.pid)
	var lat []time.Duration
	for _, p := range pubs {
		if p.err != nil {
			return p.err
		}
		lat = append(lat, p.latencies...)
	}
	slices.Sort(lat)
	if len(lat) == 0 {
		return errors.New("no publish measured")
	}
	pct := func(q float64) time.Duration { return lat[int(q*float64(len(lat)-1))] }
	fmt.Printf("publishes:        %d in %s over %d connections: %.0f/s\n", len(lat), elapsed.Round(time.Millisecond), o.conns, float64(len(lat))/elapsed.Seconds())
	fmt.Printf("latency:          p50 %s, p99 %s, max %s\n", pct(0.5).Round(time.Microsecond), pct(0.99).Round(time.Microsecond), lat[len(lat)-1].Round(time.Microsecond))
	if o.pid > 0 && cpuAfter > cpuBefore {
		fmt.Printf("gateway CPU:      %.1f µs per publish (%.2f cores)\n",
			float64((cpuAfter-cpuBefore).Microseconds())/float64(len(lat)), (cpuAfter-cpuBefore).Seconds()/elapsed.Seconds())
	}
	return nil
}

// run publishes until until, or ctx is done, recording the latencies from from on.
func (p *publisher) run(ctx context.Context, u *url.URL, o options, i int, from, until time.Time) error {
	data := bytes.Repeat([]byte("x"), o.size)
	head := []byte("POST /publish/" + o.topic + " HTTP/1.1\r\nHost: " + u.Host + "\r\nContent-Type: text/plain\r\n")
	tail := fmt.Appendf(nil, "Content-Length: %d\r\n\r\n%s", len(data), data)
	req := append(slices.Clip(head), tail...) // the same for every publish without keys
	for n := 0; ctx.Err() == nil; n++ {
		began := time.Now()
		if began.After(until) {
			return nil
		}
		if o.keys {
			req = append(req[:len(head)], fmt.Sprintf("Idempotency-Key: pubload-%d-%d-%d\r\n", from.UnixNano(), i, n)...)
			req = append(req, tail...)
		}
		if _, err := p.conn.Write(req); err != nil {
			return err
		}
		if err := p.readAnswer(); err != nil {
			return fmt.Errorf("publish %d on connection %d: %w", n, i, err)
		}
		if began.After(from) {
			p.latencies = append(p.latencies, time.Since(began))
		}
	}
	return nil
}

// readAnswer reads a response, which must be 200 with the stored event's sequence.
func (p *publisher) readAnswer() error {
	line, err := p.r.ReadSlice('\n')
	if err != nil {
		return err
	}
	if !bytes.HasPrefix(line, []byte("HTTP/1.1 200 ")) {
		return fmt.Errorf("answer %q", bytes.TrimSpace(line))
	}
	length := -1
	for {
		line, err = p.r.ReadSlice('\n')
		if err != nil {
			return err
		}
		h := bytes.TrimSpace(line)
		if len(h) == 0 {
			break
		}
		if k, v, ok := bytes.Cut(h, []byte(":")); ok && bytes.EqualFold(k, []byte("Content-Length")) {
			if length, err = strconv.Atoi(string(bytes.TrimSpace(v))); err != nil {
				return fmt.Errorf("header %q", h)
			}
		}
	}
	if length < 0 {
		return errors.New("answer without Content-Length")
	}
	p.body = append(p.body[:0], make([]byte, length)...)
	body := p.body
	if _, err := io.ReadFull(p.r, body); err != nil {
		return err
	}
	if !bytes.Contains(body, []byte(`"seq":`)) || bytes.Contains(body, []byte(`"seq":0,`)) {
		return fmt.Errorf("answer %s: no sequence", body)
	}
	return nil
}

// cpuTime returns the user and system CPU time of process pid so far, from Linux's
// /proc/<pid>/stat; 0 when pid is 0 or it cannot be read.
func cpuTime(pid int) time.Duration {
	if pid <= 0 {
		return 0
	}
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name (which may hold spaces) in parentheses.
	_, rest, ok := bytes.Cut(raw, []byte(") "))
	if !ok {
		return 0
	}
	f := strings.Fields(string(rest))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	const ticksPerSecond = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / ticksPerSecond
}
