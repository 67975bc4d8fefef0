package e2e

import (
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestFsyncAlways: with GATEWAY_FSYNC=always the store is fsynced on every write (README,
// Durability). The gateway runs under strace, which sees the system calls themselves: each
// acknowledged publish must have been followed by an fsync of the stream's message block.
// The default (every 2 minutes) fsyncs none of those writes, so that the count is the
// setting's doing.
func TestFsyncAlways(t *testing.T) {
	t.Parallel()
	strace, err := exec.LookPath("strace")
	if err != nil {
		skipOrFail(t, "needs strace to see the gateway's fsync calls")
	}
	const publishes = 20
	forSettings(t, []setting{
		{"always", []string{"GATEWAY_FSYNC=always"}},
		{"default", nil},
	}, func(t *testing.T, set setting) {
		g := startGateway(t, set.env...)
		calls := traceStoreCalls(t, strace, g)
		for i := range publishes {
			g.publish(t, "durable", "", strings.Repeat("d", i+1))
		}
		// Tracing works: the publishes' writes to the block are seen.
		pollUntil(t, eventTimeout, "the publishes' writes to the stream's block in the trace", func() bool {
			return calls.count("write") >= publishes
		})
		writes, fsyncs := calls.count("write"), calls.count("fsync")
		t.Logf("%s: %d writes and %d fsyncs of the stream's message block for %d publishes", set.name, writes, fsyncs, publishes)
		if set.name == "always" {
			pollUntil(t, eventTimeout, "an fsync of the stream's block per publish", func() bool {
				return calls.count("fsync") >= publishes
			})
		} else if fsyncs >= publishes/2 {
			t.Errorf("%d fsyncs for %d publishes with the default interval: the count does not tell the setting", fsyncs, publishes)
		}
	})
}

// storeCalls are the system calls on the stream's message block files that strace reports
// for a gateway.
type storeCalls struct {
	lines *logLines
}

// traceStoreCalls attaches strace to g's process (all its threads, and later ones) and
// returns once the trace has begun. strace detaches when the test ends, before g stops.
func traceStoreCalls(tb testing.TB, strace string, g *gatewayProc) *storeCalls {
	tb.Helper()
	out := newLogLines()
	// -y names each file descriptor's path; -s 0 leaves the data out.
	cmd := exec.Command(strace, "-f", "-y", "-s", "0",
		"-e", "trace=write,pwrite64,writev,pwritev,fsync,fdatasync,sync_file_range",
		"-p", strconv.Itoa(g.cmd.Process.Pid))
	cmd.Stderr = out
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start strace: %v", err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		out.close()
		close(exited)
	}()
	tb.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGINT) // detaches from the gateway, which runs on
		select {
		case <-exited:
		case <-time.After(stopTimeout):
			cmd.Process.Kill()
			<-exited
		}
	})
	// "strace: Process N attached with M threads" comes once every thread is traced.
	pollUntil(tb, startTimeout, "strace to attach", func() bool {
		if isClosed(exited) {
			skipOrFail(tb, "strace cannot trace the gateway: "+out.text())
		}
		return strings.Contains(out.text(), "attached")
	})
	return &storeCalls{lines: out}
}

// count returns how many calls of kind ("write" for any write, "fsync" for any sync) on a
// message block of the gateway's stream the trace holds so far.
func (c *storeCalls) count(kind string) int {
	n := 0
	for _, line := range c.lines.lines() {
		if !strings.Contains(line, "/streams/"+streamName+"/msgs/") || !strings.Contains(line, ".blk>") {
			continue
		}
		call := line
		if strings.HasPrefix(call, "[pid ") {
			_, call, _ = strings.Cut(call, "] ")
		}
		switch {
		case kind == "write" && (strings.HasPrefix(call, "write(") || strings.HasPrefix(call, "pwrite")):
			n++
		case kind == "fsync" && (strings.HasPrefix(call, "fsync(") || strings.HasPrefix(call, "fdatasync(") ||
			strings.HasPrefix(call, "sync_file_range(")):
			n++
		}
	}
	return n
}
