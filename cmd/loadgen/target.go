package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Servers loadgen knows how to drive: the gateway, nginx with the nchan module as
// configured by nchan.conf, and the in-memory reference broadcaster of ./bare.
const (
	natsse = "natsse"
	nchan  = "nchan"
	bare   = "bare"
)

// target is the server under load and the URL shapes it answers:
//
//	natsse, bare: GET /events?topic=t, POST /publish/t, GET /stats for the open streams
//	nchan:        GET /sub/t (Accept: text/event-stream), POST /pub/t, GET /nchan_status
//
// All resume a stream after the event whose id a request names in Last-Event-ID.
type target struct {
	kind string
	base string // http://host:port
	// streams opens SSE streams, one connection each; publishes keeps its connections
	// alive between publishes.
	streams, publishes *http.Client
}

func newTarget(kind, base string) (*target, error) {
	if kind != natsse && kind != nchan && kind != bare {
		return nil, fmt.Errorf("unknown target %q (natsse, nchan or bare)", kind)
	}
	return &target{
		kind:      kind,
		base:      strings.TrimSuffix(base, "/"),
		streams:   &http.Client{Transport: &http.Transport{DisableCompression: true}},
		publishes: &http.Client{Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 256}},
	}, nil
}

// streamRequest asks for the events of topic after the event lastID ("": from the next
// event published).
func (t *target) streamRequest(ctx context.Context, topic, lastID string) (*http.Request, error) {
	u := t.base + "/events?topic=" + url.QueryEscape(topic)
	if t.kind == nchan {
		u = t.base + "/sub/" + url.PathEscape(topic)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/event-stream")
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	return req, nil
}

func (t *target) publishURL(topic string) string {
	if t.kind == nchan {
		return t.base + "/pub/" + url.PathEscape(topic)
	}
	return t.base + "/publish/" + url.PathEscape(topic)
}

// stored reports whether status answers a publish that the server stored: natsse answers
// 200, nchan 201 when the message had subscribers and 202 when it had none.
func (t *target) stored(status int) bool {
	if t.kind == nchan {
		return status == 201 || status == 202
	}
	return status == 200
}

// order turns an event id into a number that grows with the server's order of the
// events of one topic: natsse's ids end in the stream sequence (epoch-seq), bare's in the
// topic's, and nchan's are <time>:<tag>, the tag counting the messages of one second.
func (t *target) order(id string) (uint64, bool) {
	if t.kind == nchan {
		sec, tag, ok := strings.Cut(id, ":")
		s, err1 := strconv.ParseUint(sec, 10, 32)
		n, err2 := strconv.ParseUint(tag, 10, 24)
		return s<<24 | n, ok && err1 == nil && err2 == nil
	}
	i := strings.LastIndexByte(id, '-')
	seq, err := strconv.ParseUint(id[i+1:], 10, 64)
	return seq, i > 0 && err == nil
}

// openStreams returns how many streams the server holds open: natsse and bare count those
// that have joined the live events (a stream before that could miss an event), nchan its
// subscribers.
func (t *target) openStreams(ctx context.Context) (int64, error) {
	if t.kind == nchan {
		return t.nchanSubscribers(ctx)
	}
	body, err := t.get(ctx, "/stats")
	if err != nil {
		return 0, err
	}
	defer body.Close()
	var s struct {
		Connections int64 `json:"connections"`
	}
	err = json.NewDecoder(body).Decode(&s)
	return s.Connections, err
}

func (t *target) nchanSubscribers(ctx context.Context) (int64, error) {
	body, err := t.get(ctx, "/nchan_status")
	if err != nil {
		return 0, err
	}
	defer body.Close()
	sc := bufio.NewScanner(body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "subscribers:"); ok {
			return strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, fmt.Errorf("GET /nchan_status: no subscribers line")
}

// slowCuts returns how many streams natsse or bare has cut off for not keeping up (nchan
// does not cut them: it returns 0).
func (t *target) slowCuts(ctx context.Context) (uint64, error) {
	if t.kind == nchan {
		return 0, nil
	}
	body, err := t.get(ctx, "/stats")
	if err != nil {
		return 0, err
	}
	defer body.Close()
	var s struct {
		SlowCut uint64 `json:"slow_cut"`
	}
	err = json.NewDecoder(body).Decode(&s)
	return s.SlowCut, err
}

func (t *target) get(ctx context.Context, path string) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.base+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := t.publishes.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s: status %d", path, resp.StatusCode)
	}
	return resp.Body, nil
}
