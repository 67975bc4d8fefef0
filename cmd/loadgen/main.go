// Command loadgen puts a running gateway under load and checks what it delivers.
//
// It opens -conns SSE streams spread over -topics topics, waits until the gateway reports
// them all joined, then publishes over HTTP at -rate events per second for -duration.
// Every stream must receive every event of its topic exactly once and in order; loadgen
// reports misses, duplicates, publish and delivery latencies, and — given the gateway's
// -pid — its resident memory per open stream.
//
//	go run ./cmd/loadgen -url http://127.0.0.1:8080 -conns 2000 -rate 2000 -duration 20s -pid $(pgrep gateway)
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/natsse/natsse/sseformat"
)

type options struct {
	url      string
	conns    int
	topics   int
	rate     int
	duration time.Duration
	size     int
	pid      int
	prefix   string
}

func main() {
	var o options
	flag.StringVar(&o.url, "url", "http://127.0.0.1:8080", "the gateway's base URL")
	flag.IntVar(&o.conns, "conns", 1000, "SSE streams to open")
	flag.IntVar(&o.topics, "topics", 10, "topics the streams and publishes are spread over")
	flag.IntVar(&o.rate, "rate", 1000, "HTTP publishes per second (0: none, only open the streams)")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "how long to publish")
	flag.IntVar(&o.size, "size", 256, "bytes of data per event")
	flag.IntVar(&o.pid, "pid", 0, "the gateway's process id, to report its memory per stream")
	flag.StringVar(&o.prefix, "prefix", "load", "first token of the topics used")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

// stream is one SSE connection and what it received.
type stream struct {
	topic     string
	seqs      []uint64
	latencies []time.Duration
	err       error
}

func run(ctx context.Context, o options, out io.Writer) error {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}}
	before := rss(o.pid)
	base := stats(ctx, client, o.url).Connections

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	streams := make([]*stream, o.conns)
	var wg sync.WaitGroup
	for i := range streams {
		s := &stream{topic: fmt.Sprintf("%s.t%d", o.prefix, i%o.topics)}
		streams[i] = s
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.err = s.read(ctx, client, o.url)
		}()
	}
	joined := time.Now()
	for stats(ctx, client, o.url).Connections < base+int64(o.conns) {
		if ctx.Err() != nil || time.Since(joined) > time.Minute {
			return fmt.Errorf("streams did not all join within a minute")
		}
		time.Sleep(50 * time.Millisecond)
	}
	fmt.Fprintf(out, "streams open:     %d (joined in %s)\n", o.conns, time.Since(joined).Round(time.Millisecond))
	if after := rss(o.pid); before > 0 && after > 0 {
		fmt.Fprintf(out, "gateway RSS:      %.1f MiB before, %.1f MiB with the streams: %.1f KiB per stream\n",
			mib(before), mib(after), float64(after-before)/1024/float64(o.conns))
	}
	if o.rate <= 0 {
		return nil
	}

	published, pubLat, err := publish(ctx, client, o)
	if err != nil {
		return err
	}
	// Wait until every stream has what was published for its topic, or give up after 30s.
	deadline := time.Now().Add(30 * time.Second)
	for !complete(streams, published) && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	return report(out, o, streams, published, pubLat)
}

func (s *stream) read(ctx context.Context, client *http.Client, base string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/events?topic="+s.topic, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	dec := sseformat.NewDecoder(bufio.NewReader(resp.Body))
	for {
		ev, err := dec.Next()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		_, seqText, _ := strings.Cut(ev.ID, "-")
		seq, _ := strconv.ParseUint(seqText, 10, 64)
		var sent int64
		if ts, _, ok := strings.Cut(ev.Data, " "); ok {
			sent, _ = strconv.ParseInt(ts, 10, 64)
		}
		mu.Lock()
		s.seqs = append(s.seqs, seq)
		if sent > 0 {
			s.latencies = append(s.latencies, time.Since(time.Unix(0, sent)))
		}
		mu.Unlock()
	}
}

// mu guards every stream's slices: readers append, the main goroutine checks.
var mu sync.Mutex

func complete(streams []*stream, published map[string][]uint64) bool {
	mu.Lock()
	defer mu.Unlock()
	for _, s := range streams {
		if len(s.seqs) < len(published[s.topic]) {
			return false
		}
	}
	return true
}

// publish sends o.rate events per second for o.duration from a few workers, and returns
// the acknowledged sequences per topic, in order, and the publish latencies.
func publish(ctx context.Context, client *http.Client, o options) (map[string][]uint64, []time.Duration, error) {
	const workers = 16
	total := int(float64(o.rate) * o.duration.Seconds())
	jobs := make(chan int)
	var (
		pmu       sync.Mutex
		published = make(map[string][]uint64)
		lat       []time.Duration
		failed    atomic.Int64
	)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pad := strings.Repeat("x", max(o.size-20, 0))
			for i := range jobs {
				topic := fmt.Sprintf("%s.t%d", o.prefix, i%o.topics)
				start := time.Now()
				body := strconv.FormatInt(start.UnixNano(), 10) + " " + pad
				resp, err := client.Post(o.url+"/publish/"+topic, "text/plain", strings.NewReader(body))
				if err != nil {
					failed.Add(1)
					continue
				}
				var r struct{ Seq uint64 }
				err = json.NewDecoder(resp.Body).Decode(&r)
				resp.Body.Close()
				if err != nil || resp.StatusCode != http.StatusOK {
					failed.Add(1)
					continue
				}
				pmu.Lock()
				published[topic] = append(published[topic], r.Seq)
				lat = append(lat, time.Since(start))
				pmu.Unlock()
			}
		}()
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	began := time.Now()
	sent := 0
	for sent < total && ctx.Err() == nil {
		<-tick.C
		due := min(total, int(float64(o.rate)*time.Since(began).Seconds()))
		for ; sent < due; sent++ {
			jobs <- sent
		}
	}
	close(jobs)
	wg.Wait()
	if n := failed.Load(); n > 0 {
		return nil, nil, fmt.Errorf("%d publishes failed", n)
	}
	for _, seqs := range published {
		slices.Sort(seqs) // workers finish out of order; the stream's order is by sequence
	}
	return published, lat, nil
}

func report(out io.Writer, o options, streams []*stream, published map[string][]uint64, pubLat []time.Duration) error {
	var delivered, missing, extra, errs int
	var lat []time.Duration
	for _, s := range streams {
		want := published[s.topic]
		delivered += len(s.seqs)
		if !slices.Equal(s.seqs, want) {
			if len(s.seqs) < len(want) {
				missing += len(want) - len(s.seqs)
			} else {
				extra++
			}
		}
		if s.err != nil {
			errs++
		}
		lat = append(lat, s.latencies...)
	}
	n := 0
	for _, seqs := range published {
		n += len(seqs)
	}
	fmt.Fprintf(out, "published:        %d events at %d/s target, %d bytes each\n", n, o.rate, o.size)
	fmt.Fprintf(out, "publish latency:  p50 %s  p99 %s\n", pct(pubLat, 50), pct(pubLat, 99))
	fmt.Fprintf(out, "delivered:        %d events (%.0f/s)\n", delivered, float64(delivered)/o.duration.Seconds())
	fmt.Fprintf(out, "delivery latency: p50 %s  p99 %s\n", pct(lat, 50), pct(lat, 99))
	fmt.Fprintf(out, "streams wrong:    %d missing events, %d streams with extra or out-of-order events, %d stream errors\n", missing, extra, errs)
	if missing > 0 || extra > 0 || errs > 0 {
		return errors.New("delivery was not exact")
	}
	return nil
}

func pct(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	return d[min(len(d)-1, len(d)*p/100)].Round(10 * time.Microsecond)
}

type gatewayStats struct {
	Connections int64 `json:"connections"`
}

func stats(ctx context.Context, client *http.Client, base string) gatewayStats {
	var s gatewayStats
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/stats", nil)
	resp, err := client.Do(req)
	if err != nil {
		return s
	}
	defer resp.Body.Close()
	json.NewDecoder(resp.Body).Decode(&s)
	return s
}

// rss returns the resident memory of process pid in bytes, 0 if unknown.
func rss(pid int) int64 {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte("VmRSS:")); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(string(v)), " kB"), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }
