package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/natsse/natsse/natsbus"
	"github.com/natsse/natsse/sseformat"
)

func TestMain(m *testing.M) {
	gin.SetMode(gin.TestMode)
	os.Exit(m.Run())
}

const waitFor = 20 * time.Second

type testEnv struct {
	bus *natsbus.Bus
	gw  *Gateway
	srv *httptest.Server
}

// newTestEnv starts a bus on a temporary store, a gateway and an HTTP server, and stops
// them at the end of the test. Each starts from its default options, changed by set and
// setBus when they are not nil.
func newTestEnv(t testing.TB, set func(*Options), setBus func(*natsbus.Options)) *testEnv {
	t.Helper()
	bopts := natsbus.DefaultOptions()
	bopts.StoreDir = t.TempDir()
	if setBus != nil {
		setBus(&bopts)
	}
	bus, err := natsbus.New(bopts)
	if err != nil {
		t.Fatalf("natsbus.New: %v", err)
	}
	opts := DefaultOptions()
	if set != nil {
		set(&opts)
	}
	opts.Bus = bus
	gw, err := New(opts)
	if err != nil {
		bus.Close()
		t.Fatalf("gateway.New: %v", err)
	}
	srv := httptest.NewServer(gw.Handler())
	e := &testEnv{bus: bus, gw: gw, srv: srv}
	t.Cleanup(e.close)
	return e
}

func (e *testEnv) close() {
	e.gw.Close()
	e.srv.Close()
	e.bus.Close()
}

// publish publishes over HTTP and returns the event's id.
func (e *testEnv) publish(t testing.TB, topic, typ, data string) string {
	t.Helper()
	u := e.srv.URL + "/publish/" + topic
	if typ != "" {
		u += "?event=" + url.QueryEscape(typ)
	}
	resp, err := http.Post(u, "text/plain", strings.NewReader(data))
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	defer resp.Body.Close()
	var body publishResponse
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&body) != nil {
		t.Fatalf("publish %s: status %d", topic, resp.StatusCode)
	}
	return body.ID
}

// sseClient reads one stream in the background.
type sseClient struct {
	resp   *http.Response
	events chan sseformat.Event
	done   chan error // the stream's end: io.EOF or a read error
	cancel context.CancelFunc
}

// subscribe opens GET /events?<query>, with a Last-Event-ID header when lastID is set.
func (e *testEnv) subscribe(t testing.TB, query, lastID string) *sseClient {
	t.Helper()
	c, err := e.trySubscribe(t, query, lastID)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// trySubscribe is subscribe for any goroutine: it returns its error.
func (e *testEnv) trySubscribe(t testing.TB, query, lastID string) (*sseClient, error) {
	ctx, cancel := context.WithCancel(t.Context())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.srv.URL+"/events?"+query, nil)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("subscribe: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		return nil, fmt.Errorf("subscribe %s: status %d: %s", query, resp.StatusCode, b)
	}
	c := &sseClient{resp: resp, events: make(chan sseformat.Event, 1024), done: make(chan error, 1), cancel: cancel}
	go func() {
		dec := sseformat.NewDecoder(bufio.NewReader(resp.Body))
		for {
			ev, err := dec.Next()
			if err != nil {
				c.done <- err
				close(c.events)
				return
			}
			c.events <- ev
		}
	}()
	t.Cleanup(c.close)
	return c, nil
}

func (c *sseClient) close() {
	c.cancel()
	c.resp.Body.Close()
}

// next returns the next event, failing the test if none comes in time.
func (c *sseClient) next(t testing.TB) sseformat.Event {
	t.Helper()
	select {
	case ev, ok := <-c.events:
		if !ok {
			t.Fatalf("stream ended: %v", <-c.done)
		}
		return ev
	case <-time.After(waitFor):
		t.Fatal("no event in time")
	}
	return sseformat.Event{}
}

// ended waits for the stream to end.
func (c *sseClient) ended(t testing.TB) {
	t.Helper()
	deadline := time.After(waitFor)
	for {
		select {
		case _, ok := <-c.events:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("stream did not end")
		}
	}
}

// eventually polls cond until it holds, failing the test with msg() if it does not in time.
func eventually(t testing.TB, cond func() bool, msg func() string) {
	t.Helper()
	deadline := time.NewTimer(waitFor)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline.C:
			t.Fatal(msg())
		}
	}
}

// checkGoroutines fails the test if the goroutine count does not come back to baseline.
func checkGoroutines(t testing.TB, baseline int) {
	t.Helper()
	eventually(t, func() bool { return runtime.NumGoroutine() <= baseline }, func() string {
		buf := make([]byte, 1<<20)
		n := runtime.Stack(buf, true)
		return fmt.Sprintf("%d goroutines, baseline %d:\n%s", runtime.NumGoroutine(), baseline, buf[:n])
	})
}
