package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// metricsServer serves GET /metrics on a listener of its own (GATEWAY_METRICS_ADDR), so
// that Prometheus scrapes a port the public never reaches.
type metricsServer struct {
	ln     net.Listener
	srv    *http.Server
	served chan error
}

// listenMetrics takes the metrics address at once, so that a taken port fails fast.
func listenMetrics(addr string) (*metricsServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return &metricsServer{ln: ln}, nil
}

// serve starts serving metrics, and every other path as not found.
func (m *metricsServer) serve(metrics http.Handler, log *slog.Logger) {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics)
	m.srv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	m.served = make(chan error, 1)
	go func() { m.served <- m.srv.Serve(m.ln) }()
}

// close stops serving; it is safe on a server that never served.
func (m *metricsServer) close(ctx context.Context) error {
	if m.srv == nil {
		return m.ln.Close()
	}
	err := m.srv.Shutdown(ctx)
	if err != nil {
		m.srv.Close() // a scrape still running past ctx
	}
	if serr := <-m.served; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	return err
}
