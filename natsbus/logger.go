package natsbus

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
)

// serverLogger adapts nats-server's logger to slog. The server's notices (a dozen lines at
// every start) go to debug; warnings and errors keep their level. The first fatal message
// is kept so that a failed start can say why.
type serverLogger struct {
	log *slog.Logger

	mu      sync.Mutex
	fatal   string
	started bool // before the start completes, fatal messages are returned, not logged
	// Until the Bus serves, the deployment refusing this leaf node's connection is kept
	// here, so that the start can fail with it; then it is logged as an error.
	serving bool
	refused string
}

func (l *serverLogger) setStarted() {
	l.mu.Lock()
	l.started = true
	l.mu.Unlock()
}

func (l *serverLogger) Noticef(format string, v ...any) { l.logf(slog.LevelDebug, format, v) }
func (l *serverLogger) Warnf(format string, v ...any)   { l.logf(slog.LevelWarn, format, v) }
func (l *serverLogger) Errorf(format string, v ...any) {
	level := slog.LevelError
	msg := strings.ToLower(fmt.Sprintf(format, v...))
	refusal := strings.Contains(msg, "authentication error") || strings.Contains(msg, "authorization violation") ||
		strings.Contains(msg, "permissions violation")
	switch {
	case refusal && strings.Contains(msg, "leafnode error"):
		// The deployment refused this server's leaf connection: its credentials are wrong.
		l.mu.Lock()
		if !l.serving {
			if l.refused == "" {
				l.refused = strings.TrimSpace(fmt.Sprintf(format, v...))
			}
			l.mu.Unlock()
			return
		}
		l.mu.Unlock()
	case refusal:
		level = slog.LevelDebug // a client refused: anyone can cause it, nothing is wrong with the server
	}
	l.logf(level, format, v)
}

// leafRefused returns the deployment's first refusal of this leaf node's connection, ""
// if none came before the Bus served.
func (l *serverLogger) leafRefused() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.refused
}

// setServing logs the refusals of the leaf connection from now on.
func (l *serverLogger) setServing() {
	l.mu.Lock()
	l.serving = true
	l.mu.Unlock()
}

func (l *serverLogger) Debugf(format string, v ...any) { l.logf(slog.LevelDebug, format, v) }
func (l *serverLogger) Tracef(format string, v ...any) { l.logf(slog.LevelDebug, format, v) }

func (l *serverLogger) Fatalf(format string, v ...any) {
	msg := strings.TrimSpace(fmt.Sprintf(format, v...))
	l.mu.Lock()
	if l.fatal == "" {
		l.fatal = msg
	}
	started := l.started
	l.mu.Unlock()
	if started {
		l.log.Error("nats-server: " + msg)
	}
}

func (l *serverLogger) logf(level slog.Level, format string, v []any) {
	if !l.log.Enabled(context.Background(), level) {
		return
	}
	l.log.Log(context.Background(), level, "nats-server: "+strings.TrimSpace(fmt.Sprintf(format, v...)))
}

func (l *serverLogger) fatalMessage() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.fatal
}
