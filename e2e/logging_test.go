package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// logLevels are the values of GATEWAY_LOG_LEVEL that README documents, lowest first, with
// the level each lets through.
var logLevels = []struct{ value, level string }{
	{"debug", "DEBUG"}, {"info", "INFO"}, {"warn", "WARN"}, {"error", "ERROR"},
}

// levelRank is the place of a log line's level in logLevels, -1 if it is none of them.
func levelRank(level string) int {
	for i, l := range logLevels {
		if l.level == level {
			return i
		}
	}
	return -1
}

// TestLogLevelAndFormat runs a gateway with each GATEWAY_LOG_LEVEL and GATEWAY_LOG_FORMAT
// that README documents, makes it log at each level (nats-server's notices at start are
// DEBUG, "gateway started" INFO, a sanitized event WARN, a failed start ERROR), then stops
// it: every line it wrote is in the format asked for, none is below the level asked for,
// and each of those lines at or above it is there.
func TestLogLevelAndFormat(t *testing.T) {
	t.Parallel()
	for _, format := range []string{"text", "json"} {
		for rank, l := range logLevels {
			t.Run(format+"/"+l.value, func(t *testing.T) {
				t.Parallel()
				env := []string{"GATEWAY_LOG_LEVEL=" + l.value, "GATEWAY_LOG_FORMAT=" + format}
				lines := logsOfOneRun(t, env)
				var debug, info, warn bool
				for _, line := range lines {
					level := lineLevel(line)
					_, isJSON := parseLogLine(line)
					switch {
					case isJSON != (format == "json") || level == "":
						t.Errorf("a line not in the %s format: %s", format, line)
					case levelRank(level) < rank:
						t.Errorf("a line at %s, below %s: %s", level, l.level, line)
					}
					debug = debug || level == "DEBUG"
					info = info || level == "INFO" && strings.Contains(line, "gateway started")
					warn = warn || level == "WARN" && strings.Contains(line, "event sanitized")
				}
				for i, seen := range []bool{debug, info, warn} {
					if want := i >= rank; seen != want {
						t.Errorf("%s lines: %v, want %v", logLevels[i].level, seen, want)
					}
				}
				taken := listenLocal(t).Addr().String()
				code, failed := runGateway(t, startTimeout, t.TempDir(), nil, append(env, "GATEWAY_HTTP_ADDR="+taken)...)
				checkStartFailure(t, code, failed, 1, "GATEWAY_HTTP_ADDR")
				if len(failed) == 1 {
					if _, isJSON := parseLogLine(failed[0]); isJSON != (format == "json") {
						t.Errorf("the failed start's line is not in the %s format: %s", format, failed[0])
					}
				}
			})
		}
	}
}

// logsOfOneRun starts a gateway with env on fixed ports (at levels above INFO, it does not
// say where it serves), publishes over NATS an event whose data is not UTF-8 (sanitized,
// with a WARN line) and receives it, stops the gateway and returns all it wrote.
func logsOfOneRun(t *testing.T, env []string) []string {
	t.Helper()
	ports := freePorts(t, 2)
	httpAddr, natsAddr := fmt.Sprintf("127.0.0.1:%d", ports[0]), fmt.Sprintf("127.0.0.1:%d", ports[1])
	g := launchGateway(t, t.TempDir(), append(env, "GATEWAY_HTTP_ADDR="+httpAddr, "GATEWAY_NATS_ADDR="+natsAddr)...)
	g.serves(httpAddr, "nats://"+natsAddr)
	pollUntil(t, startTimeout, "/readyz to answer 200", func() bool {
		if g.hasExited() {
			t.Fatalf("the gateway exited with %d:\n%s", g.exitCode, g.log.text())
		}
		resp, err := g.client.Get(g.url("/readyz"))
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	s := g.subscribe(t, "topic=logs")
	nc, _ := g.natsConn(t)
	if err := nc.PublishMsg(natsMsg("logs", "", "bad\xffutf8", "")); err != nil {
		t.Fatal(err)
	}
	if ev := s.next(t); ev.Data != "bad\uFFFDutf8" {
		t.Fatalf("got %+v, want the sanitized event", ev)
	}
	s.close()
	nc.Close()
	if code, _ := g.stop(t); code != 0 {
		t.Fatalf("exit code %d on SIGTERM", code)
	}
	return g.log.lines()
}
