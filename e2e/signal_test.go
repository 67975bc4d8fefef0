package e2e

import (
	"strings"
	"syscall"
	"testing"
	"time"
)

// secondSignalLimit bounds the exit after a second signal, which README says ends the
// process at once.
const secondSignalLimit = 5 * time.Second

// TestSecondSignalExitsAtOnce sends SIGTERM while a client has stopped reading its stream,
// so that the graceful shutdown waits (GATEWAY_SHUTDOWN_TIMEOUT and GATEWAY_WRITE_TIMEOUT
// are a minute), then a second signal: the process must end within secondSignalLimit,
// killed by that signal rather than by finishing the shutdown.
func TestSecondSignalExitsAtOnce(t *testing.T) {
	t.Parallel()
	for name, second := range map[string]syscall.Signal{"SIGTERM": syscall.SIGTERM, "SIGINT": syscall.SIGINT} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			g := startGateway(t, "GATEWAY_WRITE_TIMEOUT=1m", "GATEWAY_SHUTDOWN_TIMEOUT=1m",
				"GATEWAY_MAX_EVENT_BYTES=1048576")
			stuck := dialStream(t, g, "/events?topic=big")
			healthy := g.subscribe(t, "topic=big")
			const events = 24 // 12 MiB: more than the kernel buffers between the gateway and the stuck client
			payload := strings.Repeat("x", 512<<10)
			for range events {
				g.publish(t, "big", "", payload)
			}
			healthy.take(t, events) // every event is dispatched, the stuck client's too
			if s := g.stats(t); s.SlowCut != 0 || s.Connections != 2 {
				t.Fatalf("stats %+v: want 2 connections, none cut off", s)
			}
			g.client.CloseIdleConnections()

			g.signal(t, syscall.SIGTERM)
			g.waitLog(t, stopTimeout, `"gateway shutting down"`, func(e logEntry) bool { return e.msg() == "gateway shutting down" })
			if g.hasExited() {
				t.Fatalf("the gateway exited (%d) before the second signal: the stuck client did not hold its shutdown", g.exitCode)
			}
			began := time.Now()
			g.signal(t, second)
			g.waitExit(t, stopTimeout)
			took := time.Since(began)
			t.Logf("exited %s after the second signal", took.Round(time.Millisecond))
			if took > secondSignalLimit {
				t.Errorf("exited %s after the second signal, want at most %s", took.Round(time.Millisecond), secondSignalLimit)
			}
			if ws, ok := g.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != second {
				t.Errorf("process ended with %v, want killed by the second signal, %v", g.cmd.ProcessState, second)
			}
			stuck.conn.Close()
		})
	}
}
