package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// startTimeout bounds a gateway's start, from exec to its "gateway started" log line.
const startTimeout = 30 * time.Second

// stopTimeout bounds a gateway's graceful stop after SIGTERM.
const stopTimeout = 15 * time.Second

// gatewayProc is one running gateway process.
type gatewayProc struct {
	dataDir  string
	env      []string // the extra environment it was started with
	cmd      *exec.Cmd
	log      *logLines
	exited   chan struct{} // closed once the process has exited and its output is read
	exitCode int           // valid once exited is closed

	httpAddr string // host:port
	natsURL  string // nats://host:port, or "off"
	base     string // http://host:port
	client   *http.Client
}

// startGateway starts a gateway on a new data directory and waits until it serves.
// env holds extra KEY=VALUE settings, which override the defaults.
func startGateway(tb testing.TB, env ...string) *gatewayProc {
	tb.Helper()
	return startGatewayIn(tb, tb.TempDir(), env...)
}

// startGatewayIn starts a gateway on dataDir and waits until it serves.
func startGatewayIn(tb testing.TB, dataDir string, env ...string) *gatewayProc {
	tb.Helper()
	g := launchGateway(tb, dataDir, env...)
	if err := g.waitStarted(startTimeout); err != nil {
		tb.Fatalf("gateway did not start: %v\n%s", err, g.log.text())
	}
	return g
}

// setting is a named gateway environment, for a test that runs against several.
type setting struct {
	name string
	env  []string
}

// forSettings runs test for each of settings, as parallel subtests of t named after them.
func forSettings(t *testing.T, settings []setting, test func(*testing.T, setting)) {
	for _, s := range settings {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			test(t, s)
		})
	}
}

// restart stops g (if it still runs) and starts a new gateway on the same data directory
// with the same settings plus env.
func (g *gatewayProc) restart(tb testing.TB, env ...string) *gatewayProc {
	tb.Helper()
	if !g.hasExited() {
		if code, _ := g.stop(tb); code != 0 {
			tb.Fatalf("gateway exited with %d on SIGTERM", code)
		}
	}
	return startGatewayIn(tb, g.dataDir, append(append([]string(nil), g.env...), env...)...)
}

// gatewayEnv is the environment of a gateway process: this process's environment
// without GATEWAY_ variables, the test defaults, then env.
func gatewayEnv(dataDir string, env []string) []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GATEWAY_") {
			out = append(out, kv)
		}
	}
	out = append(out,
		"GATEWAY_HTTP_ADDR=127.0.0.1:0",
		"GATEWAY_NATS_ADDR=127.0.0.1:0",
		"GATEWAY_DATA_DIR="+dataDir,
		"GATEWAY_LOG_FORMAT=json",
	)
	return append(out, env...)
}

// launchGateway starts a gateway process without waiting for it to serve. The process is
// stopped (and checked for crashes) when the test ends.
func launchGateway(tb testing.TB, dataDir string, env ...string) *gatewayProc {
	tb.Helper()
	return launchGatewayVia(tb, nil, dataDir, env...)
}

// launchGatewayVia is launchGateway through a command that execs the gateway binary, given
// as its last argument, in the same process: with prefix "ip netns exec NAME", the gateway
// runs in that network namespace, and the pid and signals are still the gateway's.
func launchGatewayVia(tb testing.TB, prefix []string, dataDir string, env ...string) *gatewayProc {
	tb.Helper()
	g := &gatewayProc{
		dataDir: dataDir,
		env:     env,
		log:     newLogLines(),
		exited:  make(chan struct{}),
	}
	argv := append(slices.Clone(prefix), gatewayBin)
	g.cmd = exec.Command(argv[0], argv[1:]...)
	g.cmd.Env = gatewayEnv(dataDir, env)
	g.cmd.Stdout = g.log
	g.cmd.Stderr = g.log
	if err := g.cmd.Start(); err != nil {
		tb.Fatalf("start gateway: %v", err)
	}
	go func() {
		g.cmd.Wait()
		g.exitCode = g.cmd.ProcessState.ExitCode()
		g.log.close()
		close(g.exited)
	}()
	tb.Cleanup(func() {
		// A connection that never carried a request holds up an http.Server's Shutdown
		// for 5s: close the client's idle ones first.
		if g.client != nil {
			g.client.CloseIdleConnections()
		}
		if !g.hasExited() {
			g.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-g.exited:
			case <-time.After(stopTimeout):
				g.cmd.Process.Kill()
				<-g.exited
				tb.Errorf("gateway did not stop within %s of SIGTERM", stopTimeout)
			}
		}
		if g.client != nil {
			g.client.CloseIdleConnections()
		}
		g.log.failOnCrash(tb)
		if tb.Failed() {
			tb.Logf("gateway log (%s):\n%s", dataDir, g.log.tail(60))
		}
	})
	return g
}

// waitStarted waits for the "gateway started" log line and reads the addresses from it.
func (g *gatewayProc) waitStarted(timeout time.Duration) error {
	line, ok := g.log.waitFor(timeout, g.exited, func(e logEntry) bool { return e.msg() == "gateway started" })
	if !ok {
		if g.hasExited() {
			return fmt.Errorf("exited with code %d before starting", g.exitCode)
		}
		return fmt.Errorf("no \"gateway started\" line within %s", timeout)
	}
	httpAddr, _ := line["http"].(string)
	natsURL, _ := line["nats"].(string)
	if httpAddr == "" || natsURL == "" {
		return fmt.Errorf("\"gateway started\" line without http and nats addresses: %v", line)
	}
	g.serves(httpAddr, natsURL)
	return nil
}

// serves sets the addresses the gateway serves on, and makes its test client.
func (g *gatewayProc) serves(httpAddr, natsURL string) {
	g.httpAddr, g.natsURL = httpAddr, natsURL
	g.base = "http://" + g.httpAddr
	g.client = &http.Client{Transport: &http.Transport{
		Proxy:               nil,
		MaxIdleConnsPerHost: 32,
		IdleConnTimeout:     30 * time.Second,
	}}
}

func (g *gatewayProc) hasExited() bool {
	select {
	case <-g.exited:
		return true
	default:
		return false
	}
}

// signal sends sig and returns at once.
func (g *gatewayProc) signal(tb testing.TB, sig os.Signal) {
	tb.Helper()
	if err := g.cmd.Process.Signal(sig); err != nil {
		tb.Fatalf("signal gateway: %v", err)
	}
}

// waitExit waits for the process to exit and returns its exit code.
func (g *gatewayProc) waitExit(tb testing.TB, timeout time.Duration) int {
	tb.Helper()
	select {
	case <-g.exited:
		return g.exitCode
	case <-time.After(timeout):
		g.cmd.Process.Kill()
		<-g.exited
		tb.Fatalf("gateway still running %s after the signal; killed", timeout)
		return -1
	}
}

// stop closes the test client's idle connections, sends SIGTERM and waits for the process
// to exit. It returns the exit code and how long the process took to exit.
func (g *gatewayProc) stop(tb testing.TB) (int, time.Duration) {
	tb.Helper()
	if g.client != nil {
		g.client.CloseIdleConnections()
	}
	began := time.Now()
	g.signal(tb, syscall.SIGTERM)
	code := g.waitExit(tb, stopTimeout)
	return code, time.Since(began)
}

// kill ends the process with SIGKILL and waits for it.
func (g *gatewayProc) kill(tb testing.TB) {
	tb.Helper()
	g.cmd.Process.Kill()
	g.waitExit(tb, stopTimeout)
}

// runGateway runs a gateway process to completion with args and env (over the test
// defaults) and returns its exit code and output lines. It fails the test if the process
// does not exit within timeout.
func runGateway(tb testing.TB, timeout time.Duration, dataDir string, args []string, env ...string) (int, []string) {
	tb.Helper()
	g := &gatewayProc{log: newLogLines(), exited: make(chan struct{})}
	cmd := exec.Command(gatewayBin, args...)
	cmd.Env = gatewayEnv(dataDir, env)
	cmd.Stdout = g.log
	cmd.Stderr = g.log
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start gateway: %v", err)
	}
	go func() {
		cmd.Wait()
		g.log.close()
		close(g.exited)
	}()
	select {
	case <-g.exited:
	case <-time.After(timeout):
		cmd.Process.Kill()
		<-g.exited
		tb.Fatalf("gateway %v still running after %s; killed. Output:\n%s", args, timeout, g.log.text())
	}
	g.log.failOnCrash(tb)
	return cmd.ProcessState.ExitCode(), g.log.lines()
}

// failOnCrash fails tb if the process raced (its race detector's report), panicked or
// died of a fatal runtime error, quoting the first such line.
func (l *logLines) failOnCrash(tb testing.TB) {
	tb.Helper()
	for _, line := range l.lines() {
		if strings.Contains(line, "WARNING: DATA RACE") || strings.HasPrefix(line, "panic: ") ||
			strings.HasPrefix(line, "fatal error: ") {
			tb.Errorf("gateway crashed or raced: %s", line)
			return
		}
	}
}

// logLines collects a process's output lines and lets tests wait for one.
type logLines struct {
	mu      sync.Mutex
	partial []byte
	all     []string
	closed  bool
	changed chan struct{} // closed and replaced whenever a line is added
}

func newLogLines() *logLines { return &logLines{changed: make(chan struct{})} }

// Write implements io.Writer for the process's stdout and stderr.
func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, p...)
	added := false
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		l.all = append(l.all, string(l.partial[:i]))
		l.partial = l.partial[i+1:]
		added = true
	}
	if added {
		close(l.changed)
		l.changed = make(chan struct{})
	}
	return len(p), nil
}

// close keeps an unterminated last line.
func (l *logLines) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.partial) > 0 {
		l.all = append(l.all, string(l.partial))
		l.partial = nil
	}
	l.closed = true
	close(l.changed)
	l.changed = make(chan struct{})
}

func (l *logLines) lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.all...)
}

func (l *logLines) text() string { return strings.Join(l.lines(), "\n") }

func (l *logLines) tail(n int) string {
	lines := l.lines()
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// logEntry is one JSON log line.
type logEntry map[string]any

func (e logEntry) msg() string {
	s, _ := e["msg"].(string)
	return s
}

func parseLogLine(line string) (logEntry, bool) {
	var e logEntry
	if !strings.HasPrefix(line, "{") || json.Unmarshal([]byte(line), &e) != nil {
		return nil, false
	}
	return e, true
}

// entries returns the JSON log lines matching pred.
func (l *logLines) entries(pred func(logEntry) bool) []logEntry {
	var out []logEntry
	for _, line := range l.lines() {
		if e, ok := parseLogLine(line); ok && pred(e) {
			out = append(out, e)
		}
	}
	return out
}

// waitFor waits until a JSON log line matches pred and returns it. It gives up after
// timeout, or once the output has ended (stop is closed and every line was seen).
func (l *logLines) waitFor(timeout time.Duration, stop <-chan struct{}, pred func(logEntry) bool) (logEntry, bool) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	seen := 0
	for {
		l.mu.Lock()
		lines, closed, changed := l.all[seen:], l.closed, l.changed
		seen = len(l.all)
		l.mu.Unlock()
		for _, line := range lines {
			if e, ok := parseLogLine(line); ok && pred(e) {
				return e, true
			}
		}
		if closed {
			return nil, false
		}
		select {
		case <-changed:
		case <-timer.C:
			return nil, false
		}
	}
}

// waitLog waits for a JSON log line matching pred and fails the test if none comes.
func (g *gatewayProc) waitLog(tb testing.TB, timeout time.Duration, what string, pred func(logEntry) bool) logEntry {
	tb.Helper()
	e, ok := g.log.waitFor(timeout, g.exited, pred)
	if !ok {
		tb.Fatalf("no log line with %s within %s", what, timeout)
	}
	return e
}

// pollUntil calls cond until it returns true, failing the test after timeout.
func pollUntil(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		<-tick.C
	}
}

var errTimeout = errors.New("timed out")
