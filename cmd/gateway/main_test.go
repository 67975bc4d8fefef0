package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/kelseyhightower/envconfig"
)

func TestMain(m *testing.M) {
	gin.SetMode(gin.TestMode)
	os.Exit(m.Run())
}

func testConfig(t testing.TB) config {
	t.Helper()
	c := defaultConfig()
	if err := envconfig.Process("GATEWAY_TEST_UNSET", &c); err != nil {
		t.Fatal(err)
	}
	c.HTTPAddr = "127.0.0.1:0"
	c.NATSAddr = "127.0.0.1:0"
	c.DataDir = t.TempDir()
	return c
}

func TestDefaultsAreValid(t *testing.T) {
	c := testConfig(t)
	if err := c.validate(); err != nil {
		t.Fatal(err)
	}
	if c.HistoryMaxAge != 24*time.Hour || c.KeepAlive != 15*time.Second || c.SubjectPrefix != "sse" {
		t.Fatalf("defaults: %+v", c)
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name   string
		change func(*config)
		want   string
	}{
		{"tiny retry", func(c *config) { c.Retry = 0 }, "GATEWAY_RETRY"},
		{"tiny keep-alive", func(c *config) { c.KeepAlive = time.Millisecond }, "GATEWAY_KEEPALIVE"},
		{"fsync", func(c *config) { c.Fsync = "sometimes" }, "GATEWAY_FSYNC"},
		{"log level", func(c *config) { c.LogLevel = "loud" }, "GATEWAY_LOG_LEVEL"},
		{"log format", func(c *config) { c.LogFormat = "xml" }, "GATEWAY_LOG_FORMAT"},
		{"buffer", func(c *config) { c.BufferSize = 0 }, "GATEWAY_BUFFER_SIZE"},
		{"presence wait", func(c *config) { c.PresenceWait = time.Minute }, "GATEWAY_PRESENCE_WAIT"},
		{"two at once", func(c *config) { c.MaxTopics = 0; c.DataDir = "" }, "GATEWAY_DATA_DIR"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testConfig(t)
			tt.change(&c)
			err := c.validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %v: want one line naming %s", err, tt.want)
			}
		})
	}
}

// TestRunAndShutdown runs the whole program in process: it serves, and a cancelled context
// (a signal) shuts it down in order, ending open streams, within seconds.
func TestRunAndShutdown(t *testing.T) {
	c := testConfig(t)
	a, err := start(c, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- a.run(ctx, func() {}) }()
	base := "http://" + a.httpAddr()

	resp, err := http.Get(base + "/readyz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("readyz: %v %v", resp, err)
	}
	resp.Body.Close()
	stream, err := http.Get(base + "/events?topic=a")
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Body.Close()
	ended := make(chan struct{})
	go func() { io.Copy(io.Discard, stream.Body); close(ended) }()

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("shutdown took over 15s")
	}
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("the open stream did not end")
	}
	// The data dir is free again: a new program starts on it.
	a2, err := start(c, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("restart on the same dir: %v", err)
	}
	a2.teardown()
}

func TestStartFailsClearly(t *testing.T) {
	c := testConfig(t)
	a, err := start(c, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer a.teardown()
	t.Run("data dir locked", func(t *testing.T) {
		c2 := c
		c2.HTTPAddr, c2.NATSAddr = "127.0.0.1:0", "off"
		if _, err := start(c2, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), c.DataDir) {
			t.Fatalf("error %v: want one naming the locked dir", err)
		}
	})
	t.Run("HTTP port taken", func(t *testing.T) {
		c2 := testConfig(t)
		c2.HTTPAddr = a.httpAddr()
		if _, err := start(c2, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "address already in use") {
			t.Fatalf("error %v", err)
		}
	})
}
