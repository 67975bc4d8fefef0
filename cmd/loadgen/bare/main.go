// Command bare is the reference loadgen measures natsse against: a broadcaster of
// server-sent events on net/http that stores nothing beyond memory. It answers the part of
// the gateway's HTTP API that loadgen drives (loadgen -target bare):
//
//	POST /publish/<topic>[?event=type]  the body is the event's data; answers
//	                                    {"id","topic","seq"} once the event is queued
//	GET  /events?topic=<topic>          a stream of the topic's events from the next one
//	                                    published, or after the event named in
//	                                    Last-Event-ID ("<epoch>-<seq>", as natsse's)
//	GET  /stats                         {"connections","slow_cut"}: open streams, and
//	                                    streams cut for a full queue
//
// Each topic keeps its last -history events in memory, encoded once and shared by every
// stream; a stream resuming further back gets a gap notice and what is kept. Each stream
// has a queue of at most -queue events that publishes never wait on: a stream whose
// queue is full gets what was queued, then is cut, and its client resumes with its last
// id. A stream writes everything queued in batches, one write and flush each.
//
//	go run ./cmd/loadgen/bare -addr 127.0.0.1:8082
//	go run ./cmd/loadgen -target bare -url http://127.0.0.1:8082 -scenario fanout
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8082", "address to listen on (port 0: any free port; the log says which)")
	queue := flag.Int("queue", 512, "events queued per stream before it is cut")
	history := flag.Int("history", 200000, "events kept per topic for streams that resume")
	writeTimeout := flag.Duration("write-timeout", 10*time.Second, "bound on every write to a stream")
	keepAlive := flag.Duration("keep-alive", 15*time.Second, "interval of the keep-alive comment")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	s := &server{
		b:            newBroker(uint64(time.Now().UnixMilli()), *queue, *history),
		writeTimeout: *writeTimeout,
		keepAlive:    max(*keepAlive, time.Second),
	}
	if err := s.run(ctx, *addr, log); err != nil {
		fmt.Fprintln(os.Stderr, "bare:", err)
		os.Exit(1)
	}
}

// run serves on addr until ctx is done, then ends every stream and shuts the server down.
func (s *server) run(ctx context.Context, addr string, log *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: s.handler(), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	log.Info("bare started", "http", ln.Addr().String())
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	s.b.close()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = srv.Shutdown(shutdownCtx)
	if serr := <-served; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	log.Info("bare stopped")
	return err
}
