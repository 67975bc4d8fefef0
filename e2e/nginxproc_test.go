package e2e

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// requireNginx returns the path of nginx (Debian's package installs it as /usr/sbin/nginx,
// which is not on every PATH). Without it the test is skipped (failed when CI=true).
func requireNginx(tb testing.TB) string {
	tb.Helper()
	for _, name := range []string{"nginx", "/usr/sbin/nginx"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	skipOrFail(tb, "nginx not found: install Debian's nginx package to run the tests behind nginx")
	return ""
}

// Markers around the fenced block of README.md that is the recommended nginx location.
const (
	readmeNginxBegin = "<!-- nginx-location: begin -->"
	readmeNginxEnd   = "<!-- nginx-location: end -->"
	// readmeUpstream is the gateway's address in README's block, replaced by the test's.
	readmeUpstream = "proxy_pass http://127.0.0.1:8080;"
)

var readTimeoutDirective = regexp.MustCompile(`(?m)^(\s*proxy_read_timeout\s+)[^;\s]+;`)

// readmeNginxLocation returns the nginx location block that README.md recommends, as it
// stands there: the text of the fenced block between the nginx-location markers.
func readmeNginxLocation() (string, error) {
	b, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		return "", err
	}
	_, rest, ok := strings.Cut(string(b), readmeNginxBegin)
	if !ok {
		return "", fmt.Errorf("README.md: no %q", readmeNginxBegin)
	}
	section, _, ok := strings.Cut(rest, readmeNginxEnd)
	if !ok {
		return "", fmt.Errorf("README.md: no %q after %q", readmeNginxEnd, readmeNginxBegin)
	}
	section = strings.TrimSpace(section)
	block, hasStart := strings.CutPrefix(section, "```nginx\n")
	block, hasEnd := strings.CutSuffix(block, "\n```")
	if !hasStart || !hasEnd {
		return "", fmt.Errorf("README.md: between the nginx-location markers, want only a fenced nginx block: %q", section)
	}
	return block, nil
}

// nginxLocation returns README's location block for a gateway at upstream (host:port),
// with proxy_read_timeout set to readTimeout, an nginx time ("3s"), unless it is "".
func nginxLocation(upstream, readTimeout string) (string, error) {
	block, err := readmeNginxLocation()
	if err != nil {
		return "", err
	}
	if n := strings.Count(block, readmeUpstream); n != 1 {
		return "", fmt.Errorf("README's nginx block has %q %d times, want once: %q", readmeUpstream, n, block)
	}
	block = strings.Replace(block, readmeUpstream, "proxy_pass http://"+upstream+";", 1)
	if readTimeout == "" {
		return block, nil
	}
	if n := len(readTimeoutDirective.FindAllString(block, -1)); n != 1 {
		return "", fmt.Errorf("README's nginx block has %d proxy_read_timeout directives, want one: %q", n, block)
	}
	return readTimeoutDirective.ReplaceAllString(block, "${1}"+readTimeout+";"), nil
}

// nginxProc is nginx in front of a gateway, run in the foreground (daemon off) as a child
// of the test, with a configuration and every file of its own in a temporary directory.
// Run as root, its master process keeps its default of workers running as nobody: they
// need no file of the directory, as the master opens the logs and, with proxy_buffering
// off, nothing is written to temporary files.
type nginxProc struct {
	bin    string
	dir    string
	port   int
	client *http.Client // for requests through nginx

	cmd    *exec.Cmd
	exited chan struct{} // closed once the current process has exited
}

// startNginx runs nginx with README's location block in front of the gateway at upstream
// (host:port), on a free local port, and waits until it proxies. readTimeout overrides
// README's proxy_read_timeout unless it is "". nginx is stopped when the test ends.
func startNginx(tb testing.TB, upstream, readTimeout string) *nginxProc {
	tb.Helper()
	n := &nginxProc{
		bin: requireNginx(tb),
		dir: tb.TempDir(),
		// A proxy that holds a stream back may hold its headers too: fail, not hang.
		client: &http.Client{Transport: &http.Transport{Proxy: nil, ResponseHeaderTimeout: eventTimeout}},
	}
	location, err := nginxLocation(upstream, readTimeout)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		n.client.CloseIdleConnections()
		if n.running() {
			n.stop(tb)
		}
		if tb.Failed() {
			tb.Logf("nginx error log:\n%s", n.errorLog(40))
		}
	})
	// Another process may take the free port before nginx binds it: then try another.
	for attempt := 1; ; attempt++ {
		n.port = freePorts(tb, 1)[0]
		if err := os.WriteFile(n.confPath(), []byte(n.config(location)), 0o644); err != nil {
			tb.Fatal(err)
		}
		err = n.launch(tb)
		if err == nil {
			return n
		}
		if attempt == 3 || !strings.Contains(n.errorLog(5), "Address already in use") {
			tb.Fatalf("nginx did not start: %v\n%s", err, n.errorLog(20))
		}
	}
}

func (n *nginxProc) confPath() string { return filepath.Join(n.dir, "nginx.conf") }

// config is the whole nginx.conf around the location block.
func (n *nginxProc) config(location string) string {
	d := n.dir
	return fmt.Sprintf(`# Generated by e2e/nginxproc_test.go around README.md's location block.
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log info;
events {
    worker_connections 512;
}
http {
    access_log off;
    client_body_temp_path %[1]s/client_body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    server {
        listen 127.0.0.1:%[2]d;
%[3]s
    }
}
`, d, n.port, indent(location, "        "))
}

func indent(s, prefix string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = prefix + l
		}
	}
	return strings.Join(lines, "\n")
}

// base is nginx's http://host:port.
func (n *nginxProc) base() string { return fmt.Sprintf("http://127.0.0.1:%d", n.port) }

func (n *nginxProc) url(pathAndQuery string) string { return n.base() + pathAndQuery }

// start runs nginx again, on the same port and configuration, once it has been stopped.
func (n *nginxProc) start(tb testing.TB) {
	tb.Helper()
	if err := n.launch(tb); err != nil {
		tb.Fatalf("nginx did not start again on port %d: %v\n%s", n.port, err, n.errorLog(20))
	}
}

// launch starts nginx and waits until the gateway's /healthz answers 200 through it.
func (n *nginxProc) launch(tb testing.TB) error {
	tb.Helper()
	cmd := exec.Command(n.bin, "-p", n.dir, "-c", n.confPath(), "-e", filepath.Join(n.dir, "error.log"), "-g", "daemon off;")
	// Its own process group, so that a kill reaches the workers too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out := newLogLines()
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		out.close()
		close(exited)
	}()
	n.cmd, n.exited = cmd, exited
	deadline := time.Now().Add(startTimeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-exited:
			return fmt.Errorf("exited with %v: %s", cmd.ProcessState, out.text())
		case <-tick.C:
		}
		if n.healthy() {
			return nil
		}
		if time.Now().After(deadline) {
			n.stop(tb)
			return errors.New("GET /healthz through it did not answer 200 within " + startTimeout.String())
		}
	}
}

func (n *nginxProc) healthy() bool {
	resp, err := n.client.Get(n.url("/healthz"))
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func (n *nginxProc) running() bool {
	if n.exited == nil {
		return false
	}
	select {
	case <-n.exited:
		return false
	default:
		return true
	}
}

// stop ends nginx with SIGTERM, its fast shutdown: every connection through it is closed
// at once, open streams included. It waits for the process to exit.
func (n *nginxProc) stop(tb testing.TB) {
	tb.Helper()
	n.client.CloseIdleConnections()
	n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.exited:
	case <-time.After(stopTimeout):
		syscall.Kill(-n.cmd.Process.Pid, syscall.SIGKILL)
		<-n.exited
		tb.Errorf("nginx did not stop within %s of SIGTERM", stopTimeout)
	}
}

// errorLog returns the last lines of nginx's error log.
func (n *nginxProc) errorLog(lines int) string {
	b, err := os.ReadFile(filepath.Join(n.dir, "error.log"))
	if err != nil {
		return "(no error log: " + err.Error() + ")"
	}
	all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(all[max(0, len(all)-lines):], "\n")
}
