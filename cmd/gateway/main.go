// Command gateway serves NATS subjects as Server-Sent Events streams.
//
// It is configured by GATEWAY_* environment variables only; run it with -h to list them.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"reflect"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/gin-gonic/gin"
)

func main() {
	os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr))
}

func realMain(args []string, stdout, stderr io.Writer) int {
	for _, a := range args {
		switch a {
		case "-h", "-help", "--help", "help":
			usage(stdout)
			return 0
		default:
			fmt.Fprintf(stderr, "gateway: unknown argument %q; it is configured by environment variables (see -h)\n", a)
			return 2
		}
	}
	cfg, err := loadConfig()
	if err != nil {
		format := "text" // unless the format, at least, is right (cfg may not have read it)
		if os.Getenv(envPrefix+"_LOG_FORMAT") == "json" {
			format = "json"
		}
		logger(stderr, slog.LevelInfo, format).Error("gateway failed to start", "err", err)
		return 1
	}
	level, _ := cfg.logLevel()
	log := logger(stderr, level, cfg.LogFormat)

	// The process's one gin setting: no debug output (GIN_MODE overrides it).
	if os.Getenv("GIN_MODE") == "" {
		gin.SetMode(gin.ReleaseMode)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	// A cluster node may wait minutes for the others: a signal meanwhile ends the start.
	type started struct {
		a   *app
		err error
	}
	startc := make(chan started, 1)
	go func() {
		a, err := start(cfg, log)
		startc <- started{a, err}
	}()
	var a *app
	select {
	case s := <-startc:
		if s.err != nil {
			log.Error("gateway failed to start", "err", s.err)
			return 1
		}
		a = s.a
	case <-ctx.Done():
		log.Error("gateway failed to start", "err", "interrupted while starting")
		return 1
	}
	if err := a.run(ctx, stop); err != nil {
		log.Error("gateway stopped with an error", "err", err)
		return 1
	}
	return 0
}

func logger(w io.Writer, level slog.Level, format string) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "gateway: serves NATS subjects as Server-Sent Events streams.")
	fmt.Fprintln(w, "")
	fmt.Fprintln(w, "Endpoints: GET /events?topic=T[&topic=T2...], POST /publish/<topic>, GET /healthz, GET /readyz, GET /stats")
	fmt.Fprintln(w, "")
	fmt.Fprintln(w, "Configuration (environment variables):")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	defaults := reflect.ValueOf(defaultConfig())
	for i, f := range reflect.VisibleFields(defaults.Type()) {
		fmt.Fprintf(tw, "  %s_%s\t%s\t%s\n", envPrefix, f.Tag.Get("envconfig"), usageDefault(defaults.Field(i).Interface()), f.Tag.Get("desc"))
	}
	tw.Flush()
}

// noDefault is what -h shows for a variable that is empty unless set.
const noDefault = "(none)"

// usageDefault is a default as -h shows it: as it would be set, or noDefault.
func usageDefault(v any) string {
	if s := showDefault(v); s != "" {
		return s
	}
	return noDefault
}

// showDefault writes a default as it would be set: "24h" rather than "24h0m0s", and
// nothing for an empty list.
func showDefault(v any) string {
	switch v := v.(type) {
	case time.Duration:
		s := v.String()
		if strings.HasSuffix(s, "m0s") {
			s = strings.TrimSuffix(s, "0s")
		}
		if strings.HasSuffix(s, "h0m") {
			s = strings.TrimSuffix(s, "0m")
		}
		return s
	case []string:
		return strings.Join(v, ",")
	}
	return fmt.Sprint(v)
}
