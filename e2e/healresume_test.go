package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/natsse/natsse/sseformat"
)

// This file holds the clients of the partition test that resume on the healed node right
// after the heal, with the newest id a client of the majority received: an id that node
// may not have caught up with yet.

// retryAnswer is an answer to GET /events that carried no event.
type retryAnswer struct {
	resp *http.Response // its body read and closed
	body []byte
}

// healResume is a client that resumes on one gateway after an id, and reads until it has
// received want events, resuming after its last event whenever a stream ends, as
// EventSource does. It stops at a gap notice.
type healResume struct {
	from    string // the id it resumed after
	fromSeq uint64
	began   time.Time
	want    int

	// Written while it runs; read once it has returned.
	seqs    []uint64
	retries []retryAnswer // the answers that carried no event
	gap     string        // the data of a gap notice, if one came
	first   time.Duration // from began to its first event
	err     error
}

// run resumes on base after r.from until it has its events, ctx is done or a gap notice
// comes.
func (r *healResume) run(ctx context.Context, client *http.Client, base string, filters []string, epoch string) {
	last := r.from
	for len(r.seqs) < r.want && r.gap == "" && r.err == nil {
		if ctx.Err() != nil {
			r.err = fmt.Errorf("%d of %d events after %s within the deadline, after %d answers without an event", len(r.seqs), r.want, r.from, len(r.retries))
			return
		}
		events, retry := r.session(ctx, client, base+"/events?"+topicQuery(filters...), last, epoch)
		if len(r.seqs) > 0 {
			last = formatID(epoch, r.seqs[len(r.seqs)-1])
		}
		if events > 0 || r.err != nil {
			continue
		}
		if retry <= 0 {
			retry = 100 * time.Millisecond
		}
		wait := time.NewTimer(retry) // the reconnection delay the gateway asked for
		select {
		case <-wait.C:
		case <-ctx.Done():
			wait.Stop()
		}
	}
}

// session reads one stream from after last and returns the number of events it carried
// and its retry hint.
func (r *healResume) session(ctx context.Context, client *http.Client, url, last, epoch string) (int, time.Duration) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		r.err = err
		return 0, 0
	}
	req.Header.Set("Last-Event-ID", last)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			r.err = fmt.Errorf("GET /events after %s: %w", last, err)
		}
		return 0, 0
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		r.err = fmt.Errorf("GET /events after %s: %s: %s", last, resp.Status, b)
		return 0, 0
	}
	head := &prefixBuffer{max: 4096}
	dec := sseformat.NewDecoder(io.TeeReader(resp.Body, head))
	events := 0
	for len(r.seqs) < r.want {
		ev, err := dec.Next()
		if err != nil {
			break
		}
		if ev.Type == "gap" {
			r.gap = ev.Data
			return events, 0
		}
		seq, err := seqOf(ev.ID, epoch)
		if err != nil {
			r.err = err
			return events, 0
		}
		if len(r.seqs) == 0 {
			r.first = time.Since(r.began)
		}
		r.seqs = append(r.seqs, seq)
		events++
	}
	if events == 0 && ctx.Err() == nil {
		r.retries = append(r.retries, retryAnswer{resp: resp, body: head.buf})
	}
	return events, dec.Retry()
}

// check checks what r received against the stream: exactly its events of filters after
// r.from, in order, as many as wanted, no gap notice; each answer without an event was a
// retry-only one.
func (r *healResume) check(t *testing.T, stream []storedMsg, filters []string, what string) {
	t.Helper()
	if r.gap != "" {
		t.Errorf("%s: gap notice after %d events: %s", what, len(r.seqs), r.gap)
	}
	if r.err != nil {
		t.Errorf("%s: %v", what, r.err)
	}
	want := expectedSeqs(stream, filters, r.fromSeq)
	if d := seqDiff(r.seqs, want[:min(len(want), len(r.seqs))]); d != "" {
		t.Errorf("%s: %s", what, d)
	}
	for i, a := range r.retries {
		checkRetryOnly(t, fmt.Sprintf("%s: answer %d without an event", what, i+1), a.resp, a.body)
	}
}

// duplicates counts the events r received at or before an event it had already.
func (r *healResume) duplicates() int {
	n, prev := 0, r.fromSeq
	for _, s := range r.seqs {
		if s <= prev {
			n++
		}
		prev = max(prev, s)
	}
	return n
}

// healResumes runs healResumes, each on a goroutine of its own.
type healResumes struct {
	all []*healResume
	wg  sync.WaitGroup
}

// wait waits for every resume to return.
func (hs *healResumes) wait() { hs.wg.Wait() }

// start starts r, resuming on base; it gives up after timeout.
func (hs *healResumes) start(r *healResume, client *http.Client, base string, filters []string, epoch string, timeout time.Duration) {
	hs.all = append(hs.all, r)
	hs.wg.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		r.run(ctx, client, base, filters, epoch)
	})
}

// prefixBuffer keeps the first max bytes written to it.
type prefixBuffer struct {
	buf []byte
	max int
}

func (b *prefixBuffer) Write(p []byte) (int, error) {
	if room := b.max - len(b.buf); room > 0 {
		b.buf = append(b.buf, p[:min(len(p), room)]...)
	}
	return len(p), nil
}
