package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/natsse/natsse/auth"
	"github.com/natsse/natsse/gateway"
	"github.com/natsse/natsse/natsbus"
)

// app is the whole program: built in order by start, shut down in reverse by run.
type app struct {
	cfg     config
	log     *slog.Logger
	ln      net.Listener
	handler swapHandler // the starting handler, then the gateway's
	srv     *http.Server
	served  chan error     // the HTTP server's end
	auth    *auth.Verifier // nil when auth is off
	certs   *certificate   // nil without TLS
	bus     *natsbus.Bus
	gw      *gateway.Gateway
	metrics *metricsServer // nil unless GATEWAY_METRICS_ADDR is set
}

// swapHandler serves with whichever handler was set last.
type swapHandler struct{ h atomic.Pointer[http.Handler] }

func (s *swapHandler) set(h http.Handler) { s.h.Store(&h) }

func (s *swapHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	(*s.h.Load()).ServeHTTP(w, r)
}

// start builds the program: the HTTP listener (so that a taken port fails fast) serving
// the starting handler, the bus (store lock, embedded NATS, stream — a cluster node waits
// here for the others), then the gateway, which takes over HTTP. On error, what was built
// is torn down again.
func start(cfg config, log *slog.Logger) (_ *app, err error) {
	a := &app{cfg: cfg, log: log}
	defer func() {
		if err != nil {
			a.teardown()
		}
	}()
	a.ln, err = listen(cfg.HTTPAddr, cfg.WriteTimeout)
	if err != nil {
		return nil, fmt.Errorf("GATEWAY_HTTP_ADDR: %w", err)
	}
	if cfg.MetricsAddr != "" {
		if a.metrics, err = listenMetrics(cfg.MetricsAddr); err != nil {
			return nil, fmt.Errorf("GATEWAY_METRICS_ADDR: %w", err)
		}
	}
	a.handler.set(gateway.StartingHandler(cfg.Retry, cfg.CORSOrigins))
	a.srv = &http.Server{
		Handler:           &a.handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		// The gateway answers headers over its own limit (32 KiB) with a JSON 431; beyond
		// this, net/http refuses them before any handler runs.
		MaxHeaderBytes: 1 << 20,
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	if err := a.setProtocols(); err != nil {
		return nil, err
	}
	a.served = make(chan error, 1)
	go func() {
		if a.certs != nil {
			a.served <- a.srv.ServeTLS(a.ln, "", "")
		} else {
			a.served <- a.srv.Serve(a.ln)
		}
	}()
	// Starting takes milliseconds, unless NATS or the other cluster nodes keep it waiting:
	// only then say so.
	waiting := time.AfterFunc(time.Second, func() {
		log.Info("gateway starting: waiting for NATS and the stream; /healthz answers, /readyz not yet", "http", a.httpAddr())
	})
	defer waiting.Stop()
	bopts, gopts := cfg.busOptions(log.With("component", "nats")), cfg.gatewayOptions(log)
	aopts, err := cfg.authOptions(log.With("component", "auth"))
	if err != nil {
		return nil, err
	}
	if aopts.Enabled() {
		if a.auth, err = auth.New(aopts); err != nil {
			return nil, err
		}
		bopts.ClientAuth = a.natsGrants
		gopts.Auth = a.auth
		if aopts.JWKSURL != "" && aopts.Audience == "" {
			log.Warn("auth: a JWKS without GATEWAY_AUTH_AUDIENCE accepts the tokens its provider issues to any application, if they carry a natsse claim")
		}
	} else if !loopbackOnly(cfg.HTTPAddr) || !loopbackOnly(cfg.natsAddr()) {
		log.Warn("auth is off: anyone who reaches the HTTP or NATS port reads every topic and publishes anything; set GATEWAY_AUTH_SECRET, GATEWAY_AUTH_PUBLIC_KEY_FILE or GATEWAY_AUTH_JWKS_URL")
	}
	a.bus, err = natsbus.New(bopts)
	if errors.Is(err, natsbus.ErrListen) {
		return nil, fmt.Errorf("GATEWAY_NATS_ADDR: %w", err)
	}
	if errors.Is(err, natsbus.ErrConnect) {
		return nil, fmt.Errorf("GATEWAY_NATS_URL: %w", err)
	}
	if errors.Is(err, natsbus.ErrLeafRefused) {
		return nil, fmt.Errorf("GATEWAY_LEAF_REMOTES, GATEWAY_NATS_CREDS: %w", err)
	}
	if err != nil {
		return nil, err
	}
	gopts.Bus = a.bus
	a.gw, err = gateway.New(gopts)
	if err != nil {
		return nil, err
	}
	a.handler.set(a.gw.Handler())
	if a.metrics != nil {
		a.metrics.serve(a.gw.MetricsHandler(), log)
	}
	return a, nil
}

// setProtocols sets up TLS, with HTTP/2 and HTTP/1.1, or cleartext HTTP/2 besides
// HTTP/1.1, or plain HTTP/1.1.
func (a *app) setProtocols() error {
	switch {
	case a.cfg.TLSCertFile != "":
		certs, err := loadCertificate(a.cfg.TLSCertFile, a.cfg.TLSKeyFile, a.log)
		if err != nil {
			return err
		}
		a.certs = certs
		a.srv.TLSConfig = &tls.Config{GetCertificate: certs.get, MinVersion: tls.VersionTLS12}
	case a.cfg.H2C:
		a.srv.Protocols = new(http.Protocols)
		a.srv.Protocols.SetHTTP1(true)
		a.srv.Protocols.SetUnencryptedHTTP2(true)
	}
	return nil
}

// natsGrants checks a NATS client's token, for the embedded server.
func (a *app) natsGrants(token string) (natsbus.ClientGrants, error) {
	g, err := a.auth.Verify(token)
	if err != nil {
		return natsbus.ClientGrants{}, err
	}
	return natsbus.ClientGrants{Name: g.Subject, Publish: g.Publish, Subscribe: g.Subscribe, Expires: g.Expires}, nil
}

// loopbackOnly reports whether a listen address ("host:port", "" for none) can be reached
// from this host only.
func loopbackOnly(addr string) bool {
	if addr == "" {
		return true
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// httpAddr is the address the HTTP server listens on.
func (a *app) httpAddr() string { return a.ln.Addr().String() }

// run serves until ctx is done (a signal), then shuts down in reverse order. stop is called
// when shutdown begins, so that a second signal ends the process at once.
func (a *app) run(ctx context.Context, stop func()) error {
	served := a.served
	nats := a.bus.ClientURL()
	if nats == "" {
		nats = "off"
	}
	metrics := a.httpAddr()
	if a.metrics != nil {
		metrics = a.metrics.ln.Addr().String()
	}
	a.log.Info("gateway started", "http", a.httpAddr(), "nats", nats, "metrics", metrics,
		"data_dir", a.cfg.DataDir, "stream", a.cfg.Stream, "subjects", a.cfg.SubjectPrefix+".>",
		"last_seq", a.gw.Stats().LastSeq)

	var err error
	select {
	case <-ctx.Done():
	case err = <-served:
		err = fmt.Errorf("HTTP server: %w", err)
	}
	stop()
	began := time.Now()
	a.log.Info("gateway shutting down", "streams", a.gw.Stats().Connections)
	sctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
	defer cancel()
	// End the streams first (the HTTP server's Shutdown would wait for them forever),
	// aborting those whose clients are not reading when the timeout runs out.
	if cerr := a.gw.Shutdown(sctx); cerr != nil {
		a.log.Warn("closing streams", "err", cerr)
	}
	if serr := a.srv.Shutdown(sctx); serr != nil {
		a.log.Warn("HTTP shutdown", "err", serr)
		a.srv.Close()
	}
	if err == nil {
		if serr := <-served; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
			err = serr
		}
	}
	if a.metrics != nil {
		if merr := a.metrics.close(sctx); merr != nil {
			a.log.Warn("metrics shutdown", "err", merr)
		}
	}
	a.bus.Close()
	if a.auth != nil {
		a.auth.Close()
	}
	if a.certs != nil {
		a.certs.Close()
	}
	a.log.Info("gateway stopped", "took", time.Since(began).Round(time.Millisecond))
	return err
}

// teardown releases what start built, after a failed start.
func (a *app) teardown() {
	if a.gw != nil {
		a.gw.Close()
	}
	if a.bus != nil {
		a.bus.Close()
	}
	if a.auth != nil {
		a.auth.Close()
	}
	if a.certs != nil {
		a.certs.Close()
	}
	if a.metrics != nil {
		a.metrics.close(context.Background())
	}
	if a.srv != nil {
		a.srv.Close() // closes the listener too
	} else if a.ln != nil {
		a.ln.Close()
	}
}
