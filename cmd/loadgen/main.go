// Command loadgen puts a running server of SSE streams under load and checks what it
// delivers: natsse's gateway, or to compare, nginx with the nchan module (nchan.conf) or
// bare, a broadcaster on net/http that keeps events in memory only (./bare).
//
// Each scenario prints one result line that scripts read (compare.sh runs every scenario
// against each server), after a readable report for deliver; loadgen exits with status 1
// when the result is not ok (a stream missed an event, a publish failed, …):
//
//	result scenario=fanout target=natsse value=117747 unit=deliveries/s ok=true streams=1000 … exact=1000/1000
//
// Scenarios (-scenario; a flag left at 0 takes the scenario's default, in brackets; events
// carry -size [256] bytes of data but in slow):
//
//	deliver  -conns [1000] streams over -topics [10] topics; publish at -rate for -duration
//	         from 16 publishers; every stream must get its topic's events exactly, in order.
//	idle     open -conns [10000] streams and report the server's memory per stream (-pid);
//	         run it on a fresh server, whose memory no earlier load has grown. They all
//	         connect at once, or -opening at a time.
//	publish  -publishers [32] on kept-alive connections at full speed for -duration over
//	         -topics [10] topics, nobody listening: publishes per second.
//	replay   publish -events [100000] on one topic, then one stream resumes after the first
//	         and reads the rest: events per second, exact and in order.
//	fanout   -conns [1000] streams on one topic, -events [2000] published at full speed by
//	         -publishers [4]: deliveries per second, exact.
//	storm    -conns [5000] streams over -topics [50] topics while -rate [200]/s are
//	         published; all are dropped at once, stay away -away, and reconnect at once with
//	         their last id: time until all are back and caught up, none lost.
//	slow     -conns [100] streams on one topic, one in -slow-every [10] pausing -pause after
//	         each event, while -events [3000] of -size [4096] bytes are published in a burst
//	         by -publishers [32]: streams cut, and whether every stream (resuming like
//	         EventSource) got every event in order.
//
// Examples:
//
//	go run ./cmd/loadgen -url http://127.0.0.1:8080 -conns 2000 -rate 2000 -duration 20s -pid $(pgrep gateway)
//	go run ./cmd/loadgen -target nchan -url http://127.0.0.1:8081 -scenario fanout
//	go run ./cmd/loadgen -target bare -url http://127.0.0.1:8082 -scenario fanout
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"
)

type options struct {
	url        string
	target     string
	scenario   string
	conns      int
	events     int
	topics     int
	rate       float64
	duration   time.Duration
	size       int
	publishers int
	pid        int
	opening    int
	prefix     string
	slowEvery  int
	pause      time.Duration
	away       time.Duration
	timeout    time.Duration

	run string // distinguishes this run's topics from earlier runs' on the same server
}

func main() {
	var o options
	flag.StringVar(&o.url, "url", "http://127.0.0.1:8080", "the server's base URL")
	flag.StringVar(&o.target, "target", natsse, "the server's kind: natsse, nchan (nginx with nchan.conf) or bare (./bare)")
	flag.StringVar(&o.scenario, "scenario", "deliver", "deliver, idle, publish, replay, fanout, storm or slow")
	flag.IntVar(&o.conns, "conns", 0, "SSE streams to open (0: the scenario's default)")
	flag.IntVar(&o.events, "events", 0, "events to publish, for replay, fanout and slow (0: the scenario's default)")
	flag.IntVar(&o.topics, "topics", 0, "topics the streams and publishes are spread over (0: the scenario's default)")
	flag.Float64Var(&o.rate, "rate", 0, "publishes per second, for deliver [1000] and storm [200]")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "how long to publish, for deliver and publish")
	flag.IntVar(&o.size, "size", 0, "bytes of data per event (0: 4096 for slow, else 256)")
	flag.IntVar(&o.publishers, "publishers", 0, "concurrent publishers (0: the scenario's default)")
	flag.IntVar(&o.opening, "opening", 0, "idle: streams connecting at once (0: all at once)")
	flag.IntVar(&o.pid, "pid", 0, "the server's process id, to report its memory (with its children's: nginx's workers)")
	flag.StringVar(&o.prefix, "prefix", "load", "first token of the topics used")
	flag.IntVar(&o.slowEvery, "slow-every", 10, "slow: one stream in this many reads slowly")
	flag.DurationVar(&o.pause, "pause", 5*time.Millisecond, "slow: a slow stream's pause after each event")
	flag.DurationVar(&o.away, "away", time.Second, "storm: how long the dropped streams stay away")
	flag.DurationVar(&o.timeout, "timeout", 2*time.Minute, "longest wait for streams to open or to receive what was published")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

// run runs o.scenario and prints its result line; it fails when the scenario could not
// run or its result is not ok.
func run(ctx context.Context, o options, out io.Writer) error {
	t, err := newTarget(o.target, o.url)
	if err != nil {
		return err
	}
	scenarios := map[string]func(context.Context, options, *target, io.Writer) (result, error){
		"deliver": deliver,
		"idle":    idle,
		"publish": publishOnly,
		"replay":  replay,
		"fanout":  fanout,
		"storm":   storm,
		"slow":    slow,
	}
	sc, ok := scenarios[o.scenario]
	if !ok {
		return fmt.Errorf("unknown scenario %q", o.scenario)
	}
	o.run = o.scenario + "-" + strconv.FormatInt(time.Now().UnixNano()%(1<<40), 36)
	r, err := sc(ctx, o, t, out)
	r.scenario, r.target = o.scenario, o.target
	if err != nil {
		r.ok = false
		r.note("error", err)
	}
	fmt.Fprintln(out, r)
	if !r.ok {
		return fmt.Errorf("%s against %s: not ok", o.scenario, o.target)
	}
	return nil
}

// topic returns the name of topic i of this run.
func (o options) topic(i int) string { return fmt.Sprintf("%s.%s.t%d", o.prefix, o.run, i) }

// or returns v, or def when v is 0.
func or[T int | float64](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

// result is what a scenario measured: its main figure and notes, printed on one line of
// key=value pairs (values with spaces quoted).
type result struct {
	scenario, target string
	value            float64
	unit             string
	ok               bool
	notes            []string
}

func (r *result) note(key string, value any) {
	v := fmt.Sprint(value)
	if d, ok := value.(time.Duration); ok {
		v = d.Round(time.Millisecond).String()
		if d < 100*time.Millisecond {
			v = d.Round(100 * time.Microsecond).String()
		}
	}
	if v == "" || strings.ContainsAny(v, " \"=") {
		v = strconv.Quote(v)
	}
	r.notes = append(r.notes, key+"="+v)
}

func (r result) String() string {
	value := strconv.FormatFloat(r.value, 'f', 0, 64)
	if r.value < 100 {
		value = strconv.FormatFloat(r.value, 'f', 3, 64)
	}
	return fmt.Sprintf("result scenario=%s target=%s value=%s unit=%s ok=%t %s",
		r.scenario, r.target, value, r.unit, r.ok, strings.Join(r.notes, " "))
}
