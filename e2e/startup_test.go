package e2e

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

// textLine matches a line of the text log format, and takes its level.
var textLine = regexp.MustCompile(`^time=\S+ level=([A-Z]+)(?:[+-]\d+)? msg=`)

// lineLevel returns the level of a log line in either format, "" for a line of neither.
func lineLevel(line string) string {
	if e, ok := parseLogLine(line); ok {
		l, _ := e["level"].(string)
		return l
	}
	if m := textLine.FindStringSubmatch(line); m != nil {
		return m[1]
	}
	return ""
}

// checkStartFailure checks a failed start's exit code and output: one log line at ERROR
// level mentioning each of mentions, and no crash. A wantCode of 2 is a usage error,
// written as a plain line.
func checkStartFailure(t *testing.T, code int, lines []string, wantCode int, mentions ...string) {
	t.Helper()
	if code == 0 || (wantCode != 0 && code != wantCode) {
		t.Errorf("exit code %d, want %d", code, wantCode)
	}
	out := strings.Join(lines, "\n")
	for _, l := range lines {
		if strings.HasPrefix(l, "panic:") || strings.HasPrefix(l, "goroutine ") {
			t.Errorf("the gateway crashed:\n%s", out)
			return
		}
	}
	if len(lines) != 1 {
		t.Errorf("%d lines of output, want one error line:\n%s", len(lines), out)
	} else if level := lineLevel(lines[0]); wantCode != 2 && level != "ERROR" {
		t.Errorf("a line at level %q, want ERROR: %s", level, lines[0])
	}
	for _, m := range mentions {
		if !strings.Contains(strings.ToLower(out), strings.ToLower(m)) {
			t.Errorf("output does not mention %q:\n%s", m, out)
		}
	}
	t.Logf("output: %s", out)
}

// TestStartFailureIsOneErrorLine runs gateways that cannot start, in the default (text) log
// format: each exits 1 with one level=ERROR line naming what is wrong, as README says;
// among them the settings of two NATS modes at once, a leaf node without its JetStream
// domain, credentials set two ways, and bad log settings. With GATEWAY_LOG_FORMAT=json, the
// line is JSON, even when another variable is what is wrong.
func TestStartFailureIsOneErrorLine(t *testing.T) {
	t.Parallel()
	const timeout = 15 * time.Second
	taken := listenLocal(t).Addr().String()
	cluster := []string{"GATEWAY_SERVER_NAME=n1", "GATEWAY_CLUSTER_NAME=c", "GATEWAY_CLUSTER_ADDR=127.0.0.1:1",
		"GATEWAY_CLUSTER_ROUTES=nats://127.0.0.1:1"}
	const external, leaf, domain = "GATEWAY_NATS_URL=nats://127.0.0.1:1", "GATEWAY_LEAF_REMOTES=nats://127.0.0.1:1", "GATEWAY_JS_DOMAIN=hub"
	for _, tc := range []struct {
		name     string
		env      []string
		mentions []string
	}{
		{"bad value", []string{"GATEWAY_KEEPALIVE=abc"}, []string{"GATEWAY_KEEPALIVE"}},
		{"port taken", []string{"GATEWAY_HTTP_ADDR=" + taken}, []string{"GATEWAY_HTTP_ADDR", "in use"}},
		{"log level", []string{"GATEWAY_LOG_LEVEL=loud"}, []string{"GATEWAY_LOG_LEVEL", "loud"}},
		{"log format", []string{"GATEWAY_LOG_FORMAT=xml"}, []string{"GATEWAY_LOG_FORMAT", "xml", "text or json"}},
		{"external and cluster", append([]string{external}, cluster...), []string{"GATEWAY_NATS_URL", "cluster"}},
		{"external and leaf", []string{external, leaf, domain}, []string{"GATEWAY_NATS_URL", "leaf"}},
		{"leaf and cluster", append([]string{leaf, domain}, cluster...), []string{"GATEWAY_LEAF_REMOTES", "cluster"}},
		{"leaf without domain", []string{leaf}, []string{"GATEWAY_JS_DOMAIN", "required"}},
		{"credentials two ways", []string{external, "GATEWAY_NATS_CREDS=/nonexistent.creds", "GATEWAY_NATS_TOKEN=t"},
			[]string{"GATEWAY_NATS_CREDS", "one way"}},
		{"leaf with a token", []string{leaf, domain, "GATEWAY_NATS_TOKEN=t"}, []string{"GATEWAY_NATS_CREDS", ".creds file"}},
		{"credentials for no deployment", []string{"GATEWAY_NATS_USER=u", "GATEWAY_NATS_PASSWORD=p"}, []string{"GATEWAY_NATS_CREDS", "deployment"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := append([]string{"GATEWAY_LOG_FORMAT=text"}, tc.env...)
			code, lines := runGateway(t, timeout, t.TempDir(), nil, env...)
			checkStartFailure(t, code, lines, 1, tc.mentions...)
			if len(lines) > 0 && !strings.Contains(lines[0], " level=ERROR ") {
				t.Errorf("not a level=ERROR line: %s", lines[0])
			}
		})
	}
	t.Run("json", func(t *testing.T) {
		t.Parallel()
		for _, env := range []string{"GATEWAY_KEEPALIVE=abc", "GATEWAY_HTTP_ADDR=" + taken} {
			code, lines := runGateway(t, timeout, t.TempDir(), nil, "GATEWAY_LOG_FORMAT=json", env)
			checkStartFailure(t, code, lines, 1, strings.Split(env, "=")[0])
			if len(lines) > 0 {
				if e, ok := parseLogLine(lines[0]); !ok || e["level"] != "ERROR" || e.msg() != "gateway failed to start" {
					t.Errorf("%s: not a JSON error line: %s", env, lines[0])
				}
			}
		}
	})
}
