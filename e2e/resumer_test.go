package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/natsse/natsse/sseformat"
)

// resumer is an SSE client that resumes: when its stream ends, or when it drops it, it
// opens another from the id of the last event it received (as EventSource does), on the
// same gateway or on the next one of its list. It records the events it receives. The
// fields up to http are set before it runs; a resumer runs on one goroutine at a time.
type resumer struct {
	bases   []string // the gateways' base URLs
	node    int      // the index in bases of the gateway it reads from (next)
	move    bool     // whether it moves to the next gateway when a stream ends or is refused
	filters []string
	epoch   string // the epoch of every id it receives
	start   string // where its first stream starts: "" for live, "earliest", or an id

	randomParam bool            // it sends its position as the last_event_id parameter half the time
	budget      func() int      // events a stream takes before the client drops it; nil: no limit
	slow        bool            // it reads an event per 50ms through small buffers, and so overflows
	pause       time.Duration   // the wait after a stream ended or was refused, before resuming
	idle        time.Duration   // it fails when no event comes within idle; 0: no limit
	maxCuts     int             // it fails once more streams ended early; 0: no limit
	mustReach   bool            // it fails when a gateway does not answer, rather than resuming
	detail      bool            // it records each event's data and arrival time, not only its sequence
	sums        bool            // it records each event's id, type and a digest of its data (see eventDiff)
	hurry       <-chan struct{} // once closed, it reads at full speed, whatever its budget
	http        *http.Client

	target uint64 // the last matching sequence in the stream; set before the run is finishing

	received atomic.Int64           // events received so far
	lastID   atomic.Pointer[string] // the id of the last event received
	current  atomic.Pointer[string] // what it is doing, for failure messages

	// Written while it runs; read once it has returned.
	seqs     []uint64
	data     []string    // with detail
	times    []time.Time // with detail
	events   []eventSum  // with sums
	live     time.Time   // when its latest stream without a position was established
	last     string      // the id of the last event received
	sessions int         // streams opened
	hops     int         // moves to another gateway
	cuts     int         // streams that ended while the client still expected events
	err      error
}

// newResumer prepares a client of filters that reads from bases[node], starting at start
// (see resumer.start). Set its options before it runs.
func newResumer(bases []string, node int, filters []string, epoch, start string) *resumer {
	return &resumer{
		bases:   bases,
		node:    node,
		filters: filters,
		epoch:   epoch,
		start:   start,
		pause:   50 * time.Millisecond,
		http:    &http.Client{Transport: &http.Transport{Proxy: nil}},
	}
}

// setSlow makes the client slow: see resumer.slow.
func (c *resumer) setSlow() {
	c.slow = true
	c.http.Transport = &http.Transport{Proxy: nil, DialContext: smallReceiveBuffer().DialContext}
}

// run reads streams until ctx is done, the client fails (err) or done reports true; done
// is asked before each event and on each keep-alive.
func (c *resumer) run(ctx context.Context, done func() bool) {
	defer c.http.CloseIdleConnections()
	for ctx.Err() == nil && c.err == nil && !done() {
		if !c.session(ctx, done) || c.err != nil || done() {
			continue // dropped by the client: resume at once
		}
		if c.move {
			c.node = (c.node + 1) % len(c.bases)
			c.hops++
		}
		pause := time.NewTimer(c.pause)
		select {
		case <-pause.C:
		case <-ctx.Done():
			pause.Stop()
		}
	}
}

// read runs the client on the test's goroutine until done reports true, and fails the
// test if the client fails.
func (c *resumer) read(tb testing.TB, done func() bool) {
	tb.Helper()
	c.run(tb.Context(), done)
	if c.err != nil {
		tb.Fatal(c.err)
	}
}

// session opens one stream from the client's position and reads it. It reports whether
// the stream ended on the gateway's side or could not be opened, rather than by the client.
func (c *resumer) session(ctx context.Context, done func() bool) (ended bool) {
	base := c.bases[c.node]
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	from := c.last
	if from == "" {
		from = c.start
	}
	q := url.Values{"topic": c.filters}
	header := from
	if from == "earliest" || (from != "" && c.randomParam && rand.IntN(2) == 0) {
		q.Set("last_event_id", from)
		header = ""
	}
	req, err := http.NewRequestWithContext(sctx, http.MethodGet, base+"/events?"+q.Encode(), nil)
	if err != nil {
		c.err = err
		return false
	}
	if header != "" {
		req.Header.Set("Last-Event-ID", header)
	}
	c.setCurrent("connecting to %s after %q", base, from)
	resp, err := c.http.Do(req)
	if err != nil {
		if c.mustReach && ctx.Err() == nil {
			c.err = fmt.Errorf("GET /events on %s after %q: %w", base, from, err)
			return false
		}
		c.setCurrent("%s refused: %v", base, err)
		return true // the gateway is down or restarting
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		c.err = fmt.Errorf("GET /events on %s: %s: %s", base, resp.Status, b)
		return false
	}
	c.sessions++
	if from == "" {
		c.live = time.Now()
	}
	c.setCurrent("reading %s from after %q (session %d)", base, from, c.sessions)

	budget := math.MaxInt
	if c.budget != nil {
		budget = c.budget()
	}
	var pace <-chan time.Time
	if c.slow {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		pace = tick.C
	}
	var idled atomic.Bool
	var idle *time.Timer
	if c.idle > 0 {
		idle = time.AfterFunc(c.idle, func() {
			idled.Store(true)
			cancel()
		})
		defer idle.Stop()
	}
	dec := sseformat.NewDecoder(bufio.NewReaderSize(resp.Body, 1024))
	// A client that already has its last event waits in Next; the keep-alive wakes it.
	dec.OnComment(func(string) {
		if done() {
			cancel()
		}
	})
	for n := 0; ; n++ {
		hurry := isClosed(c.hurry)
		if (n >= budget && !hurry) || done() { // when hurrying to the end, read on
			return false
		}
		if pace != nil && !hurry {
			<-pace
		}
		ev, err := dec.Next()
		switch {
		case err == nil:
		case idled.Load():
			c.err = fmt.Errorf("no event within %s after %q from %s", c.idle, c.last, base)
			return false
		case ctx.Err() != nil || done():
			return false
		case errors.Is(err, sseformat.ErrTooLarge):
			c.err = fmt.Errorf("from %s: %w", base, err)
			return false
		default:
			c.setCurrent("stream from %s ended after %q: %v", base, c.last, err)
			if c.cuts++; c.maxCuts > 0 && c.cuts > c.maxCuts {
				c.err = fmt.Errorf("%s ended %d streams after %q: %v", base, c.cuts, c.last, err)
			}
			return true
		}
		if idle != nil {
			idle.Reset(c.idle)
		}
		if ev.Type == "gap" {
			c.err = fmt.Errorf("gap notice from %s after %q: %s", base, c.last, ev.Data)
			return false
		}
		seq, err := seqOf(ev.ID, c.epoch)
		if err != nil {
			c.err = fmt.Errorf("from %s: %w", base, err)
			return false
		}
		c.seqs = append(c.seqs, seq)
		if c.detail {
			c.data = append(c.data, ev.Data)
			c.times = append(c.times, time.Now())
		}
		if c.sums {
			c.events = append(c.events, sumOf(ev))
		}
		c.last = ev.ID
		c.lastID.Store(&ev.ID)
		c.received.Add(1)
	}
}

func (c *resumer) setCurrent(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	c.current.Store(&s)
}

// doing says what the client is doing.
func (c *resumer) doing() string {
	if p := c.current.Load(); p != nil {
		return *p
	}
	return "not started"
}

// newest returns the id of the last event received, "" before the first. Unlike the
// fields it records, it may be called while the client runs.
func (c *resumer) newest() string {
	if p := c.lastID.Load(); p != nil {
		return *p
	}
	return ""
}

// lastSeq is the sequence of the last event received, 0 if none.
func (c *resumer) lastSeq() uint64 {
	if len(c.seqs) == 0 {
		return 0
	}
	return c.seqs[len(c.seqs)-1]
}

// caughtUp reports whether finish is closed and the client has its last event. target is
// read only once finish is closed, after which it does not change.
func (c *resumer) caughtUp(finish <-chan struct{}) bool {
	if !isClosed(finish) {
		return false
	}
	return c.target == 0 || (len(c.seqs) > 0 && c.seqs[len(c.seqs)-1] >= c.target)
}

// startSeq is the sequence after which the client's events must match the stream exactly:
// that of its start id, 0 from the earliest, or before its first event when it started live.
func (c *resumer) startSeq(tb testing.TB) uint64 {
	tb.Helper()
	switch c.start {
	case "earliest":
		return 0
	case "":
		if len(c.seqs) == 0 {
			return 0
		}
		return c.seqs[0] - 1
	}
	seq, err := seqOf(c.start, c.epoch)
	if err != nil {
		tb.Fatalf("start id: %v", err)
	}
	return seq
}

// dataDiff describes the first event received with other data than the stream's, ""
// when there is none. It needs detail.
func (c *resumer) dataDiff(stream []storedMsg) string {
	for i, seq := range c.seqs {
		if m := storedAt(stream, seq); m.data != c.data[i] {
			return fmt.Sprintf("event %d has data %q, the stream %q", seq, c.data[i], m.data)
		}
	}
	return ""
}

// eventSum is an event received, its data reduced to a digest: a client that reads
// thousands of large events keeps only what compares them with the stream.
type eventSum struct {
	id, typ string
	data    uint64 // FNV-1a of the data
	size    int    // of the data
}

func sumOf(ev sseformat.Event) eventSum {
	return eventSum{id: ev.ID, typ: ev.Type, data: digest(ev.Data), size: len(ev.Data)}
}

func digest(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64()
}

// eventDiff describes the first event received with another id, type or data than the
// stream's message of its sequence, "" when there is none. It needs sums.
func (c *resumer) eventDiff(stream []storedMsg) string {
	for i, seq := range c.seqs {
		m := storedAt(stream, seq)
		want := sseformat.Event{ID: formatID(c.epoch, seq), Type: m.typ, Data: wireData(m.data)}
		if got := c.events[i]; got != sumOf(want) {
			return fmt.Sprintf("event %d of %d: id %q, type %q, %d bytes of data; the stream's seq %d: id %q, type %q, %d bytes, data differs: %v",
				i+1, len(c.seqs), got.id, got.typ, got.size, seq, want.ID, want.Type, len(want.Data), got.data != sumOf(want).data)
		}
	}
	return ""
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
