package e2e

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// nodeSetup installs the npm packages of node/ once per test binary.
var nodeSetup struct {
	once sync.Once
	node string // path of node
	dir  string // absolute path of node/
	skip string // why the Node tests cannot run here
	err  error  // the install failed
}

// requireNode returns the paths of node and of the npm project in node/, installing its
// packages (npm ci) if node_modules is missing. Without node or npm the test is skipped
// (failed when CI=true).
func requireNode(tb testing.TB) (node, dir string) {
	tb.Helper()
	s := &nodeSetup
	s.once.Do(func() {
		var err error
		if s.dir, err = filepath.Abs("node"); err != nil {
			s.err = err
			return
		}
		if s.node, err = exec.LookPath("node"); err != nil {
			s.skip = "node not found: install Node.js and npm to run the Node client tests"
			return
		}
		if installed, err := nodePackagesInstalled(s.dir); err != nil {
			s.err = err
			return
		} else if installed {
			return
		}
		npm, err := exec.LookPath("npm")
		if err != nil {
			s.skip = "npm not found, and " + s.dir + "/node_modules is missing: install npm to run the Node client tests"
			return
		}
		cmd := exec.Command(npm, "ci", "--prefix", s.dir, "--no-audit", "--no-fund")
		if out, err := cmd.CombinedOutput(); err != nil {
			s.err = errors.New("npm ci --prefix " + s.dir + ": " + err.Error() + "\n" + string(out))
		}
	})
	switch {
	case s.skip != "":
		skipOrFail(tb, s.skip)
	case s.err != nil:
		tb.Fatal(s.err)
	}
	return s.node, s.dir
}

// nodePackagesInstalled reports whether every dependency in dir's package.json is in
// dir/node_modules.
func nodePackagesInstalled(dir string) (bool, error) {
	b, err := os.ReadFile(filepath.Join(dir, "package.json"))
	if err != nil {
		return false, err
	}
	var pkg struct {
		Dependencies map[string]string `json:"dependencies"`
	}
	if err := json.Unmarshal(b, &pkg); err != nil {
		return false, fmt.Errorf("%s/package.json: %w", dir, err)
	}
	for name := range pkg.Dependencies {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", name, "package.json")); err != nil {
			return false, nil
		}
	}
	return true, nil
}

// nodeClient is a client script of node/ running as a subprocess and printing what it
// receives: sse-client.mjs (an EventSource of the npm eventsource package) or
// fetch-client.mjs (@microsoft/fetch-event-source).
type nodeClient struct {
	mu     sync.Mutex
	evs    []clientEvent
	st     clientState
	bad    []string // output lines that are not JSON
	stderr *logLines
}

// nodeLine is one line of sse-client.mjs's output.
type nodeLine struct {
	Type        *string `json:"type"`
	Data        string  `json:"data"`
	LastEventID string  `json:"lastEventId"`
	Open        bool    `json:"open"`
	Error       *string `json:"error"`
}

// startNodeClient starts an npm EventSource on streamURL, listening to "message", "gap"
// and types. It is stopped when the test ends.
func startNodeClient(tb testing.TB, streamURL string, types []string) *nodeClient {
	tb.Helper()
	if len(types) > 0 {
		esc := make([]string, len(types))
		for i, t := range types {
			esc[i] = url.PathEscape(t)
		}
		streamURL += "#types=" + strings.Join(esc, ",")
	}
	return startNodeScript(tb, "sse-client.mjs", streamURL)
}

// startFetchClient starts @microsoft/fetch-event-source on streamURL. It dispatches
// messages of every type, and reconnects (after the server's retry delay, with
// Last-Event-ID) whenever a stream ends. It is stopped when the test ends.
func startFetchClient(tb testing.TB, streamURL string) *nodeClient {
	tb.Helper()
	return startNodeScript(tb, "fetch-client.mjs", streamURL)
}

// startNodeScript runs node/<script> on streamURL as a subprocess.
func startNodeScript(tb testing.TB, script, streamURL string) *nodeClient {
	tb.Helper()
	node, dir := requireNode(tb)
	c := &nodeClient{stderr: newLogLines()}
	c.st.ReadyState = -1
	cmd := exec.Command(node, script, streamURL)
	cmd.Dir = dir
	cmd.Stderr = c.stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start node: %v", err)
	}
	exited := make(chan struct{})
	go func() {
		c.read(stdout)
		cmd.Wait()
		c.stderr.close()
		close(exited)
	}()
	tb.Cleanup(func() {
		stdin.Close() // the client exits when its stdin closes
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
			tb.Errorf("node %s still running 10s after its stdin closed; killed", script)
		}
		if tb.Failed() {
			c.mu.Lock()
			bad := strings.Join(c.bad, "\n")
			c.mu.Unlock()
			tb.Logf("node %s %s: state %+v\n%s%s", script, streamURL, c.state(tb), bad, c.stderr.tail(20))
		}
	})
	return c
}

func (c *nodeClient) read(r io.Reader) {
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadString('\n')
		if line = strings.TrimSuffix(line, "\n"); line != "" {
			var l nodeLine
			c.mu.Lock()
			switch {
			case json.Unmarshal([]byte(line), &l) != nil:
				c.bad = append(c.bad, line)
			case l.Open:
				c.st.Opens++
			case l.Error != nil:
				c.st.Errors++
			case l.Type != nil:
				c.evs = append(c.evs, clientEvent{Type: *l.Type, Data: l.Data, LastEventID: l.LastEventID})
				c.st.Count++
			default:
				c.bad = append(c.bad, line)
			}
			c.mu.Unlock()
		}
		if err != nil {
			return
		}
	}
}

func (c *nodeClient) state(testing.TB) clientState {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.st
}

func (c *nodeClient) events(_ testing.TB, from int) []clientEvent {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]clientEvent(nil), c.evs[min(from, len(c.evs)):]...)
}

// TestNodeCorpus sends the corpus of tricky payloads and event types, published over HTTP
// and NATS, to the npm eventsource package in Node: it must receive exactly what a
// browser does.
func TestNodeCorpus(t *testing.T) {
	t.Parallel()
	requireNode(t)
	g := startGateway(t)
	corpus := trickyCorpus()
	c := startNodeClient(t, g.url("/events?topic=corpus"), corpusTypes(corpus))
	waitOpen(t, c)

	want := publishCorpus(t, g, "corpus", corpus)
	end := g.publish(t, "corpus", "", "end")
	want = append(want, expectedEvent{what: "end", clientEvent: clientEvent{Type: "message", Data: "end", LastEventID: end.ID}})
	checkCorpus(t, waitEvents(t, c, len(want), eventTimeout), want)
	if s := c.state(t); s.Opens != 1 || s.Errors != 0 {
		t.Errorf("EventSource state %+v: want one open, no error", s)
	}
}
