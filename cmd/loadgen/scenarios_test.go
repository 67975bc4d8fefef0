package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/natsse/natsse/gateway"
	"github.com/natsse/natsse/natsbus"
)

// tiny returns options that run scenario against url in a second or two.
func tiny(kind, url, scenario string, pid int) options {
	return options{
		url: url, target: kind, scenario: scenario, pid: pid, prefix: "test",
		conns: 20, events: 300, topics: 3, rate: 200, duration: time.Second, publishers: 4,
		slowEvery: 4, pause: time.Millisecond, away: 200 * time.Millisecond, timeout: time.Minute,
	}
}

var allScenarios = []string{"deliver", "idle", "publish", "replay", "fanout", "storm", "slow"}

// runScenarios runs every scenario against the server at url and checks that each
// prints one result line that says ok.
func runScenarios(t *testing.T, kind, url string, pid int) {
	for _, sc := range allScenarios {
		t.Run(sc, func(t *testing.T) {
			var out bytes.Buffer
			err := run(t.Context(), tiny(kind, url, sc, pid), &out)
			var results []string
			for _, line := range strings.Split(out.String(), "\n") {
				if strings.HasPrefix(line, "result ") {
					results = append(results, line)
				}
			}
			if err != nil || len(results) != 1 {
				t.Fatalf("run: %v; want one result line, got:\n%s", err, out.String())
			}
			for _, want := range []string{"scenario=" + sc + " ", "target=" + kind + " ", " ok=true "} {
				if !strings.Contains(results[0], want) {
					t.Errorf("result line lacks %q: %s", want, results[0])
				}
			}
		})
	}
}

func TestScenariosAgainstGateway(t *testing.T) {
	gin.SetMode(gin.TestMode)
	bopts := natsbus.DefaultOptions()
	bopts.StoreDir = t.TempDir()
	bus, err := natsbus.New(bopts)
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close()
	opts := gateway.DefaultOptions()
	opts.Bus = bus
	opts.MaxStreams, opts.MaxStreamsPerClient, opts.PublishRate = 0, 0, 0
	// Small enough for the slow scenario's streams to be cut.
	opts.BufferSize = 16
	gw, err := gateway.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw.Handler())
	defer srv.Close()
	defer gw.Close()
	runScenarios(t, natsse, srv.URL, os.Getpid())
}

// TestScenariosAgainstBare runs the reference broadcaster of ./bare, built with the race
// detector. Its queue holds a second of the scenarios' events: bare cuts a stream whose
// queue fills, where the gateway catches it up in place, and a race-built reader on a busy
// machine can fall that far behind; the deliver scenario's readers do not resume.
func TestScenariosAgainstBare(t *testing.T) {
	url, pid := startBare(t, "-queue", "256")
	runScenarios(t, bare, url, pid)
}

// startBare builds ./bare and runs it with args on a free port until the test ends, and
// returns its URL and process id. The test fails if bare does not exit cleanly.
func startBare(t *testing.T, args ...string) (string, int) {
	bin := filepath.Join(t.TempDir(), "bare")
	if out, err := exec.Command("go", "build", "-race", "-o", bin, "./bare").CombinedOutput(); err != nil {
		t.Fatalf("go build ./bare: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, append([]string{"-addr", "127.0.0.1:0"}, args...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Its log, read to the end: the first line names its address.
	var log strings.Builder
	addr := make(chan string, 1)
	logged := make(chan struct{})
	go func() {
		defer close(logged)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			log.WriteString(sc.Text() + "\n")
			if _, a, ok := strings.Cut(sc.Text(), " http="); ok && strings.Contains(sc.Text(), "bare started") {
				addr <- a
			}
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		exited := make(chan error, 1)
		go func() { <-logged; exited <- cmd.Wait() }()
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("bare: %v\n%s", err, log.String())
			}
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-exited
			t.Errorf("bare did not stop within 30s of SIGTERM:\n%s", log.String())
		}
	})
	select {
	case a := <-addr:
		return "http://" + a, cmd.Process.Pid
	case <-logged:
		t.Fatalf("bare exited:\n%s", log.String())
	case <-time.After(30 * time.Second):
		t.Fatal("bare did not log its address within 30s")
	}
	return "", 0
}

// TestScenariosAgainstNchan runs nginx with nchan.conf; it is skipped without nginx and
// Debian's libnginx-mod-nchan.
func TestScenariosAgainstNchan(t *testing.T) {
	const module = "/usr/lib/nginx/modules/ngx_nchan_module.so"
	bin, err := exec.LookPath("nginx")
	if err != nil {
		bin = "/usr/sbin/nginx"
	}
	if _, err := os.Stat(bin); err != nil {
		skipOrFail(t, "no nginx")
	}
	if _, err := os.Stat(module); err != nil {
		skipOrFail(t, "no nchan module (Debian: libnginx-mod-nchan)")
	}
	url, pid := startNchan(t, bin, module)
	runScenarios(t, nchan, url, pid)
}

// startNchan runs nginx with nchan.conf on a free port until the test ends, and returns
// its URL and process id.
func startNchan(t *testing.T, bin, module string) (string, int) {
	conf, err := os.ReadFile("nchan.conf")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for attempt := 1; ; attempt++ {
		port := freePort(t)
		text := strings.NewReplacer("@MODULE@", module, "@DIR@", dir, "@PORT@", fmt.Sprint(port)).Replace(string(conf))
		if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "-p", dir, "-c", filepath.Join(dir, "nginx.conf"), "-e", filepath.Join(dir, "error.log"), "-g", "daemon off;")
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() {
			cmd.Wait()
			close(exited)
		}()
		t.Cleanup(func() {
			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(10 * time.Second):
				syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				<-exited
			}
		})
		url := fmt.Sprintf("http://127.0.0.1:%d", port)
		up := waitUntil(t.Context(), 10*time.Second, func() bool {
			select {
			case <-exited:
				return true
			default:
			}
			resp, err := http.Get(url + "/nchan_status")
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		})
		select {
		case <-exited:
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			if attempt < 3 && bytes.Contains(log, []byte("Address already in use")) {
				continue
			}
			t.Fatalf("nginx exited: %s\n%s", out.String(), log)
		default:
		}
		if !up {
			t.Fatal("nginx did not answer GET /nchan_status within 10s")
		}
		return url, cmd.Process.Pid
	}
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// skipOrFail skips the test for a missing program, except under CI=true, where every test
// must run.
func skipOrFail(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s: CI=true requires it (.ci/run installs it)", why)
	}
	t.Skip(why)
}
