package main

import (
	"context"
	"errors"
	"io"
)

// idle opens the streams, waits until the server holds them all and reports the server's
// memory per stream: its memory with the streams open less its memory before, divided by
// their number. Loadgen holds a socket per stream: mind its limit of open files.
func idle(ctx context.Context, o options, t *target, _ io.Writer) (result, error) {
	conns, topics := or(o.conns, 10000), or(o.topics, 10)
	r := result{unit: "KiB/stream"}
	if o.pid <= 0 {
		return r, errors.New("idle needs the server's -pid")
	}
	_, stop, m, err := openMeasured(ctx, t, streamsToOpen{
		n:       conns,
		topic:   func(i int) string { return o.topic(i % topics) },
		opening: o.opening,
	}, o.pid, o.timeout)
	if err != nil {
		return r, err
	}
	defer stop()
	perStream, ok := m.perStream(conns)
	if !ok {
		return r, errors.New("cannot read the server's memory in /proc")
	}
	r.value = perStream
	r.ok = true
	r.note("streams", conns)
	if o.opening > 0 {
		r.note("opening", o.opening)
	}
	r.note("opened_in", m.in)
	r.note("mem_before_mib", round1(mib(m.before)))
	r.note("mem_after_mib", round1(mib(m.after)))
	return r, nil
}

func round1(f float64) float64 { return float64(int64(f*10+0.5)) / 10 }
