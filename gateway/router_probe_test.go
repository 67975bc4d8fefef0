package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// routerAnswer is what the gateway's router answered one request.
type routerAnswer struct {
	status int
	header http.Header
	body   []byte
}

// errorCode returns the code of a JSON error answer, failing the test if the answer is not
// one: {"error","code"}, both set, the message free of package prefixes.
func (a routerAnswer) errorCode(t testing.TB) string {
	t.Helper()
	var e errorBody
	if err := json.Unmarshal(a.body, &e); err != nil || e.Error == "" || e.Code == "" {
		t.Fatalf("status %d with body %q: want a JSON error", a.status, a.body)
	}
	if strings.Contains(e.Error, "natsbus:") || strings.Contains(e.Error, "sseformat:") || strings.Contains(e.Error, "gateway:") {
		t.Fatalf("error message leaks package names: %q", e.Error)
	}
	return e.Code
}

// serveRouter sends req through h, the gateway's router, in-process, and returns its
// answer. A stream that opens is ended, by cancelling its request, as soon as its head is
// written. A handler that does not answer in time fails the test.
func serveRouter(t testing.TB, h http.Handler, req *http.Request) routerAnswer {
	t.Helper()
	ctx, cancel := context.WithCancel(req.Context())
	defer cancel()
	w := &probeWriter{header: http.Header{}, head: make(chan struct{})}
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.ServeHTTP(w, req.WithContext(ctx))
	}()
	timeout := time.NewTimer(waitFor)
	defer timeout.Stop()
	select {
	case <-done:
	case <-w.head:
		cancel()
		select {
		case <-done:
		case <-timeout.C:
			t.Fatalf("%s %s: the handler did not return after its request was cancelled", req.Method, req.URL)
		}
	case <-timeout.C:
		t.Fatalf("%s %s: no answer", req.Method, req.URL)
	}
	return routerAnswer{status: w.status, header: w.header, body: w.body.Bytes()}
}

// probeWriter is a ResponseWriter that tells when the head is written. It is written by
// the handler's goroutine only, and read once the handler has returned.
type probeWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
	head   chan struct{} // closed when the head is written
	once   sync.Once
}

func (w *probeWriter) Header() http.Header { return w.header }

func (w *probeWriter) WriteHeader(status int) {
	w.once.Do(func() {
		w.status = status
		close(w.head)
	})
}

func (w *probeWriter) Write(b []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.body.Write(b)
}

func (w *probeWriter) Flush() { w.WriteHeader(http.StatusOK) }

// SetWriteDeadline accepts any deadline: writes to memory never block. Streams call it
// from other goroutines when they abort.
func (w *probeWriter) SetWriteDeadline(time.Time) error { return nil }
