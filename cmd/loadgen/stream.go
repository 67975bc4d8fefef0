package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/natsse/natsse/sseformat"
)

// reconnectDelay is how long a resuming stream waits before it connects again: far
// shorter than a browser's retry, so that the time measured is the server's.
const reconnectDelay = 100 * time.Millisecond

// stream is one SSE client of one topic that records the events it receives. With resume
// set it behaves like EventSource: when the server or the network ends the stream it
// connects again, sending the id of the last event received as Last-Event-ID.
type stream struct {
	t      *target
	topic  string
	resume bool
	pause  time.Duration // after each event: a slow reader
	gate   chan struct{} // held while connecting, when the streams connecting at once are bounded

	// Written by the goroutine in run; read by others only after run has returned.
	lastID string     // where the next connection resumes ("": from the next event)
	got    []received // in the order received
	gaps   int        // gap notices: events the server could not deliver
	bad    int        // events whose id or data loadgen could not read
	err    error      // why the stream stopped before it was told to

	count     atomic.Int64 // events received
	ends      atomic.Int64 // connections ended by the server or the network
	connected atomic.Int64 // when the last connection got its response headers (Unix ns)
}

// received is one event as a stream got it.
type received struct {
	order   uint64        // from its id: grows with the server's order (target.order)
	index   int64         // the publisher's number for it
	latency time.Duration // from publish to receipt
}

// run connects and reads until ctx is done, or until the stream ends unless s.resume.
func (s *stream) run(ctx context.Context) {
	for {
		err := s.read(ctx)
		if ctx.Err() != nil {
			return
		}
		s.ends.Add(1)
		if !s.resume {
			s.err = err
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(reconnectDelay):
		}
	}
}

// read makes one connection and reads its events until it ends.
func (s *stream) read(ctx context.Context) error {
	req, err := s.t.streamRequest(ctx, s.topic, s.lastID)
	if err != nil {
		return err
	}
	if s.gate != nil {
		select {
		case s.gate <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	resp, err := s.t.streams.Do(req)
	if s.gate != nil {
		<-s.gate // the headers are in, or the connection failed
	}
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("GET %s: status %d", req.URL.Path, resp.StatusCode)
	}
	s.connected.Store(time.Now().UnixNano())
	dec := sseformat.NewDecoder(resp.Body)
	for {
		ev, err := dec.Next()
		if err != nil {
			return err
		}
		if ev.Type == "gap" {
			s.gaps++
			continue
		}
		s.record(ev)
		if s.pause > 0 {
			time.Sleep(s.pause)
		}
	}
}

func (s *stream) record(ev sseformat.Event) {
	now := time.Now()
	order, okID := s.t.order(ev.ID)
	index, sent, okData := parseData(ev.Data)
	if !okID || !okData {
		s.bad++
		return
	}
	r := received{order: order, index: index}
	if sent > 0 {
		r.latency = now.Sub(time.Unix(0, sent))
	}
	s.got = append(s.got, r)
	s.lastID = ev.ID
	s.count.Add(1)
}

// parseData reads what the publisher put in an event's data: "<index> <Unix ns> <padding>".
func parseData(data string) (index, sent int64, ok bool) {
	first, rest, _ := strings.Cut(data, " ")
	second, _, _ := strings.Cut(rest, " ")
	index, err1 := strconv.ParseInt(first, 10, 64)
	sent, err2 := strconv.ParseInt(second, 10, 64)
	return index, sent, err1 == nil && err2 == nil
}

// runStreams runs every stream in a goroutine of its own; stop ends them and returns once
// they have all returned.
func runStreams(ctx context.Context, ss []*stream) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, s := range ss {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.run(ctx)
		}()
	}
	return func() {
		cancel()
		wg.Wait()
	}
}

// waitUntil polls cond until it holds (true) or timeout passes or ctx is done (false).
func waitUntil(ctx context.Context, timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
	}
	return true
}

// receivedBy returns how many events the streams have received in all.
func receivedBy(ss []*stream) int64 {
	var n int64
	for _, s := range ss {
		n += s.count.Load()
	}
	return n
}
