package main

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// certCheck is how often the certificate's files are looked at for a change.
const certCheck = 2 * time.Second

// certificate serves the TLS certificate of a key pair and reads the files again when they
// change, or on SIGHUP, without dropping connections. A pair that does not load is logged
// and the previous one kept. It owns one goroutine, which Close stops and waits for.
type certificate struct {
	certFile, keyFile string
	log               *slog.Logger
	current           atomic.Pointer[tls.Certificate]
	stop, done        chan struct{}
	closeOnce         sync.Once
}

// loadCertificate reads the pair and starts watching its files.
func loadCertificate(certFile, keyFile string, log *slog.Logger) (*certificate, error) {
	c := &certificate{certFile: certFile, keyFile: keyFile, log: log, stop: make(chan struct{}), done: make(chan struct{})}
	if err := c.reload(); err != nil {
		return nil, err
	}
	go c.watch(c.modified())
	return c, nil
}

// get implements tls.Config.GetCertificate.
func (c *certificate) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return c.current.Load(), nil
}

func (c *certificate) reload() error {
	pair, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return fmt.Errorf("GATEWAY_TLS_CERT_FILE/GATEWAY_TLS_KEY_FILE: %w", err)
	}
	c.current.Store(&pair)
	return nil
}

// modified is the latest modification time of the two files.
func (c *certificate) modified() time.Time {
	var latest time.Time
	for _, f := range []string{c.certFile, c.keyFile} {
		if fi, err := os.Stat(f); err == nil && fi.ModTime().After(latest) {
			latest = fi.ModTime()
		}
	}
	return latest
}

func (c *certificate) watch(seen time.Time) {
	defer close(c.done)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	tick := time.NewTicker(certCheck)
	defer tick.Stop()
	var failed time.Time // the files' time when a reload failed
	for {
		select {
		case <-c.stop:
			return
		case <-hup:
		case <-tick.C:
			if m := c.modified(); m.Equal(seen) {
				continue
			}
		}
		m := c.modified()
		if err := c.reload(); err != nil {
			// Perhaps half written: try again at the next tick, saying so once per change.
			if !m.Equal(failed) {
				c.log.Warn("TLS certificate not reloaded; serving the previous one", "err", err)
				failed = m
			}
			continue
		}
		seen = m
		c.log.Info("TLS certificate reloaded", "cert", c.certFile)
	}
}

// Close stops watching the files and waits until the watcher has returned. It is
// idempotent.
func (c *certificate) Close() {
	c.closeOnce.Do(func() { close(c.stop) })
	<-c.done
}
