package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// publisher publishes numbered events over HTTP and remembers, per topic, those the
// server acknowledged. An event's data is "<index> <publish time, Unix ns> <padding>":
// the index names it, the time gives its delivery latency. It is safe for concurrent use.
type publisher struct {
	t    *target
	pad  string
	next atomic.Int64 // the index of the next event
	// idle holds the kept-alive connections between publishes: raw HTTP/1.1, so that the
	// client takes little of the CPU the server needs.
	idle chan *poster

	mu        sync.Mutex
	acked     map[string][]int64 // indices acknowledged per topic, in the order of the acks
	total     int
	failed    int
	firstErr  error
	latencies []time.Duration
}

// newPublisher returns a publisher of events of about size bytes of data.
func newPublisher(t *target, size int) *publisher {
	return &publisher{t: t, pad: strings.Repeat("x", max(size-40, 1)), acked: make(map[string][]int64), idle: make(chan *poster, 256)}
}

// publish sends the next event to topic and returns its id once the server has
// acknowledged it (nchan's is the channel's newest id when it answers: the event's own
// only when no other publish to the topic is under way).
func (p *publisher) publish(ctx context.Context, topic string) (string, error) {
	index := p.next.Add(1) - 1
	start := time.Now()
	body := strconv.FormatInt(index, 10) + " " + strconv.FormatInt(start.UnixNano(), 10) + " " + p.pad
	id, err := p.post(ctx, topic, body)
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		p.failed++
		if p.firstErr == nil {
			p.firstErr = err
		}
		return "", err
	}
	p.acked[topic] = append(p.acked[topic], index)
	p.total++
	p.latencies = append(p.latencies, time.Since(start))
	return id, nil
}

// post publishes body to topic on an idle kept-alive connection (or a new one) and returns
// the id the server answered with. A connection that failed, or whose post ctx ended, is
// closed.
func (p *publisher) post(ctx context.Context, topic, body string) (string, error) {
	url := p.t.publishURL(topic)
	req, err := postRequest(url, []byte(body))
	if err != nil {
		return "", err
	}
	var c *poster
	select {
	case c = <-p.idle:
	default:
		if c, err = dialPoster(ctx, p.t.base); err != nil {
			return "", err
		}
	}
	// ctx's end cuts a post short: the connection is then closed.
	stop := context.AfterFunc(ctx, func() { _ = c.conn.SetDeadline(time.Unix(1, 0)) })
	status, b, err := c.post(ctx, req)
	if !stop() && err == nil {
		err = ctx.Err()
	}
	if err != nil {
		c.close()
		return "", fmt.Errorf("POST %s: %w", url, err)
	}
	// The answer is read before c, whose buffer holds it, goes back to idle.
	var ack struct {
		ID            string `json:"id"`              // natsse
		LastMessageID string `json:"last_message_id"` // nchan
	}
	switch {
	case status/100 != 2:
		err = fmt.Errorf("POST %s: status %d: %.200s", url, status, b)
	case json.Unmarshal(b, &ack) != nil:
		err = fmt.Errorf("POST %s: not JSON: %.200s", url, b)
	}
	if c.closing { // the server closes it: the next post dials anew
		c.close()
	} else {
		select {
		case p.idle <- c:
		default:
			c.close()
		}
	}
	if err != nil {
		return "", err
	}
	return ack.ID + ack.LastMessageID, nil
}

// pace is how run sends a batch of publishes.
type pace struct {
	workers  int                  // concurrent publishers, each on a kept-alive connection
	rate     float64              // publishes per second over all workers; 0: as fast as they go
	count    int                  // publishes in all; 0: no limit
	duration time.Duration        // stop starting publishes after this; 0: no limit
	until    <-chan struct{}      // stop starting publishes once this is closed; nil: no limit
	topic    func(n int64) string // the topic of the batch's n-th publish
}

// run publishes as pc says and returns when the batch is done or ctx is. It stops at the
// first failure (run's caller finds it in failures).
func (p *publisher) run(ctx context.Context, pc pace) {
	began := time.Now()
	var claimed atomic.Int64
	var stopped atomic.Bool
	var wg sync.WaitGroup
	for range max(pc.workers, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stopped.Load() && ctx.Err() == nil {
				n := claimed.Add(1) - 1
				if pc.count > 0 && n >= int64(pc.count) || pc.duration > 0 && time.Since(began) > pc.duration || closed(pc.until) {
					return
				}
				if pc.rate > 0 {
					due := began.Add(time.Duration(float64(n) / pc.rate * float64(time.Second)))
					if d := time.Until(due); d > 0 {
						select {
						case <-ctx.Done():
							return
						case <-pc.until:
							return
						case <-time.After(d):
						}
					}
				}
				if _, err := p.publish(ctx, pc.topic(n)); err != nil {
					stopped.Store(true)
				}
			}
		}()
	}
	wg.Wait()
}

func closed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// ackedOn returns the indices of the events acknowledged on topic, sorted.
func (p *publisher) ackedOn(topic string) []int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	idx := slices.Clone(p.acked[topic])
	slices.Sort(idx)
	return idx
}

// ackedCount returns how many events have been acknowledged on topic so far.
func (p *publisher) ackedCount(topic string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.acked[topic])
}

// outcome returns the events acknowledged, those that failed with the first error, and
// the publish latencies.
func (p *publisher) outcome() (acked, failed int, firstErr error, latencies []time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.total, p.failed, p.firstErr, slices.Clone(p.latencies)
}
