package gateway

import (
	"net/http"
	"strconv"
	"time"

	"github.com/natsse/natsse/sseformat"
)

// StartingHandler serves while the gateway waits for NATS and its stream (a cluster node
// waits for the other nodes): /healthz answers 200, /readyz 503, a stream 200 with only a
// retry hint (so that EventSource tries again), and everything else 503 with Retry-After.
// Browsers on the corsOrigins (as Options.CORSOrigins) get the same CORS headers as from
// the gateway: an EventSource answered without them would give up for good.
func StartingHandler(retry time.Duration, corsOrigins []string) http.Handler {
	if retry <= 0 {
		retry = 3 * time.Second
	}
	cors, _ := newCORSPolicy(corsOrigins) // the gateway refuses to start with bad origins
	unavailable := []byte(`{"error":"the gateway is starting: waiting for NATS and its stream","code":"unavailable"}`)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !cors.apply(w, r) {
			return
		}
		switch r.URL.Path {
		case "/healthz":
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			w.Write([]byte(`{"status":"starting"}`))
		case "/events":
			setStreamHeaders(w.Header())
			w.WriteHeader(http.StatusOK)
			// No blank line after the hint: see streamWriter.comeBackLater.
			w.Write(sseformat.AppendRetry(sseformat.AppendComment(nil, "starting"), retry))
		default:
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			w.Header().Set("Retry-After", strconv.Itoa(retryAfterSecs))
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write(unavailable)
		}
	})
}
