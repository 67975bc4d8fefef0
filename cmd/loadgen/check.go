package main

import (
	"fmt"
	"slices"
	"time"
)

// verdict is how the events a stream received compare with those acknowledged on its
// topic. A stream is exact when it received every acknowledged event once, in the
// server's order, and no notice of lost events.
type verdict struct {
	missing  int // acknowledged events never received
	extra    int // events received twice, or never acknowledged
	disorder int // events received after one that the server ordered after them
	gaps     int // gap notices
	bad      int // events loadgen could not read
}

func (v verdict) exact() bool { return v == verdict{} }

// judge compares got with want, the indices acknowledged on the stream's topic, sorted.
func judge(got []received, want []int64) verdict {
	var v verdict
	for i := 1; i < len(got); i++ {
		if got[i].order <= got[i-1].order {
			v.disorder++
		}
	}
	idx := make([]int64, len(got))
	for i, r := range got {
		idx[i] = r.index
	}
	slices.Sort(idx)
	i, j := 0, 0
	for i < len(idx) || j < len(want) {
		switch {
		case j == len(want) || i < len(idx) && idx[i] < want[j]:
			v.extra++ // a duplicate or never acknowledged
			i++
		case i == len(idx) || want[j] < idx[i]:
			v.missing++
			j++
		default:
			i++
			j++
		}
	}
	return v
}

// tally sums the verdicts of many streams.
type tally struct {
	streams, exact int
	total          verdict
	ends           int64 // connections ended by the server or the network
	cutStreams     int   // streams that saw their connection end at least once
	errors         int   // streams that stopped with an error
	firstErr       error
	latencies      []time.Duration
}

// judgeAll judges every stream against want(topic), which must return the sorted
// indices acknowledged on topic. The streams must have stopped.
func judgeAll(ss []*stream, want func(topic string) []int64) tally {
	var t tally
	wants := make(map[string][]int64)
	for _, s := range ss {
		w, ok := wants[s.topic]
		if !ok {
			w = want(s.topic)
			wants[s.topic] = w
		}
		v := judge(s.got, w)
		v.gaps, v.bad = s.gaps, s.bad
		t.add(v)
		if n := s.ends.Load(); n > 0 {
			t.ends += n
			t.cutStreams++
		}
		if s.err != nil {
			t.errors++
			if t.firstErr == nil {
				t.firstErr = s.err
			}
		}
		for _, r := range s.got {
			if r.latency > 0 {
				t.latencies = append(t.latencies, r.latency)
			}
		}
	}
	return t
}

func (t *tally) add(v verdict) {
	t.streams++
	if v.exact() {
		t.exact++
	}
	t.total.missing += v.missing
	t.total.extra += v.extra
	t.total.disorder += v.disorder
	t.total.gaps += v.gaps
	t.total.bad += v.bad
}

// ok says whether every stream was exact and none stopped with an error.
func (t tally) ok() bool { return t.exact == t.streams && t.errors == 0 }

// note adds the tally to a result line.
func (t tally) note(r *result) {
	r.note("exact", fmt.Sprintf("%d/%d", t.exact, t.streams))
	if !t.total.exact() {
		r.note("missing", t.total.missing)
		r.note("extra", t.total.extra)
		r.note("disorder", t.total.disorder)
		r.note("gaps", t.total.gaps)
		r.note("unreadable", t.total.bad)
	}
	if t.errors > 0 {
		r.note("stream_errors", t.errors)
		r.note("first_error", t.firstErr)
	}
}

// pct returns the p-th percentile of d, which it sorts.
func pct(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	return d[min(len(d)-1, len(d)*p/100)].Round(10 * time.Microsecond)
}
