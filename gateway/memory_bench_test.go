package gateway

import (
	"bufio"
	"fmt"
	"net"
	"runtime"
	"strings"
	"testing"
)

// BenchmarkIdleStreamMemory opens 2,000 idle streams over raw TCP connections (clients that
// hold a socket and nothing else) and reports what each stream costs the gateway's process:
// heap, goroutine stacks and goroutines, measured after a GC, with the default queue and a
// small one. The client sockets' own heap (a few hundred bytes each) is included.
//
//	go test -run X -bench IdleStreamMemory -benchtime 1x ./gateway/
func BenchmarkIdleStreamMemory(b *testing.B) {
	const streams = 2000
	for _, buffer := range []int{DefaultOptions().BufferSize, 16} {
		b.Run(fmt.Sprintf("buffer=%d", buffer), func(b *testing.B) {
			for range b.N {
				e := newTestEnv(b, func(o *Options) { o.BufferSize, o.MaxStreamsPerClient = buffer, 0 }, nil)
				before := memory()
				conns := make([]net.Conn, 0, streams)
				for i := range streams {
					conns = append(conns, openIdleStream(b, e, fmt.Sprintf("idle.%d", i)))
				}
				eventually(b, func() bool { return e.gw.Stats().Connections == streams },
					func() string { return fmt.Sprintf("%d streams joined", e.gw.Stats().Connections) })
				after := memory()
				b.ReportMetric(float64(after.heap-before.heap)/streams, "heap-B/stream")
				b.ReportMetric(float64(after.stack-before.stack)/streams, "stack-B/stream")
				b.ReportMetric(float64(after.goroutines-before.goroutines)/streams, "goroutines/stream")
				for _, c := range conns {
					c.Close()
				}
			}
		})
	}
}

// openIdleStream opens a stream of topic and reads its headers and first line.
func openIdleStream(b *testing.B, e *testEnv, topic string) net.Conn {
	c, err := net.Dial("tcp", strings.TrimPrefix(e.srv.URL, "http://"))
	if err != nil {
		b.Fatal(err)
	}
	fmt.Fprintf(c, "GET /events?topic=%s HTTP/1.1\r\nHost: bench\r\n\r\n", topic)
	r := bufio.NewReaderSize(c, 512)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			b.Fatalf("stream %s: %v", topic, err)
		}
		if strings.HasPrefix(line, "retry:") {
			return c
		}
	}
}

type memoryUse struct{ heap, stack, goroutines int64 }

func memory() memoryUse {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return memoryUse{heap: int64(m.HeapInuse), stack: int64(m.StackInuse), goroutines: int64(runtime.NumGoroutine())}
}
