package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestBrowserReconnect cuts Chromium's EventSource connections again and again while
// events are published, then restarts the gateway: the browser reconnects by itself with
// Last-Event-ID and the page ends up with every event exactly once, in order.
func TestBrowserReconnect(t *testing.T) {
	t.Parallel()
	requireChromium(t)
	pageSrv := servePage(t)
	g := startGateway(t, "GATEWAY_CORS_ORIGINS="+pageSrv.URL, "GATEWAY_RETRY=200ms")
	b := newBrowser(t)
	p := b.open(t, pageSrv.URL+"/")
	testReconnect(t, g, func(name, url string) sseClient { return p.openSource(t, name, url, nil) })
}

// TestNodeReconnect is TestBrowserReconnect with the npm eventsource package.
func TestNodeReconnect(t *testing.T) {
	t.Parallel()
	requireNode(t)
	g := startGateway(t, "GATEWAY_RETRY=200ms")
	testReconnect(t, g, func(name, url string) sseClient { return startNodeClient(t, url, nil) })
}

// TestFetchEventSourceReconnect is TestBrowserReconnect with @microsoft/fetch-event-source.
func TestFetchEventSourceReconnect(t *testing.T) {
	t.Parallel()
	requireNode(t)
	g := startGateway(t, "GATEWAY_RETRY=200ms")
	testReconnect(t, g, func(name, url string) sseClient { return startFetchClient(t, url) })
}

// testReconnect opens two clients on one topic: one through a proxy that cuts its
// connections several times mid-stream, one straight to the gateway. A publisher
// publishes 300 events in bursts meanwhile; then the gateway is stopped and started
// again on the same data directory and HTTP port, and publishes more. Both clients must
// have received every event exactly once, in order, reconnecting by themselves (the
// gateway must send a short retry).
func testReconnect(t *testing.T, g *gatewayProc, connect func(name, url string) sseClient) {
	const (
		topic        = "reconnect"
		bursts       = 12
		perBurst     = 25
		afterRestart = 50
	)
	proxy := startProxy(t, g.httpAddr)
	query := "/events?topic=" + topic
	clients := []struct {
		name string
		c    sseClient
	}{
		{"through the proxy", connect("proxied", proxy.base()+query)},
		{"direct", connect("direct", g.url(query))},
	}
	cutClient := clients[0].c
	t.Cleanup(func() { // before the clients stop
		if t.Failed() {
			t.Log(proxy)
		}
	})
	for _, c := range clients {
		waitOpen(t, c.c)
	}

	// The publisher publishes one burst each time it is released; it closes progress
	// when done, after setting pubErr if it failed.
	ctx, cancel := context.WithCancel(t.Context())
	release := make(chan struct{})
	progress := make(chan int, bursts*perBurst)
	defer func() { // the publisher has returned once progress is closed
		cancel()
		for range progress {
		}
	}()
	var ids []string // the ids published, in order; the publisher's until progress is closed
	var pubErr error
	go func() {
		defer close(progress)
		for b := range bursts {
			select {
			case <-release:
			case <-ctx.Done():
				pubErr = ctx.Err()
				return
			}
			for i := range perBurst {
				res, err := g.tryPublish(ctx, topic, "", fmt.Sprintf("burst %d event %d", b, i), "")
				if err != nil {
					pubErr = err
					return
				}
				ids = append(ids, res.ID)
				progress <- len(ids)
			}
		}
	}()
	published := 0
	waitPublished := func(n int) {
		t.Helper()
		timer := time.NewTimer(eventTimeout)
		defer timer.Stop()
		for published < n {
			select {
			case k, ok := <-progress:
				if !ok {
					t.Fatalf("publisher stopped after %d events: %v", published, pubErr)
				}
				published = k
			case <-timer.C:
				t.Fatalf("%d events published after %s, want %d", published, eventTimeout, n)
			}
		}
	}

	// Half of the cuts hit a stream the gateway has answered, the other half a connection
	// as soon as it is made, which may be before the gateway answers.
	cuts := 0
	for b := range bursts {
		release <- struct{}{}
		if b%2 == 1 {
			// Cut while the burst is being published, once the client is connected again.
			waitPublished(b*perBurst + perBurst/3)
			answered := cuts%2 == 0
			pollUntil(t, eventTimeout, "the client to connect again through the proxy", func() bool {
				c := proxy.counts()
				return c.open > 0 && (!answered || c.answered > 0)
			})
			if n := proxy.cut(); n == 0 {
				t.Fatalf("cut %d: no connection to cut", cuts+1)
			}
			cuts++
		}
		waitPublished((b + 1) * perBurst)
	}
	if _, ok := <-progress; ok || pubErr != nil {
		t.Fatalf("publisher did not stop after %d events: %v", published, pubErr)
	}
	// The publisher has returned: ids is the test's now.
	for _, c := range clients {
		checkIDs(t, c.name, waitEvents(t, c.c, len(ids), eventTimeout), ids)
	}
	// The last cut may have come after the last event: the client reconnects anyway.
	pollUntil(t, eventTimeout, "the client to connect again after the last cut", func() bool {
		c := proxy.counts()
		return c.accepted > cuts && c.answered > 0
	})
	opens := cutClient.state(t).Opens

	// Restart on the same port, so that the clients' URLs still work. Nothing is
	// published while the gateway is down.
	g = g.restart(t, "GATEWAY_HTTP_ADDR="+g.httpAddr)
	for i := range afterRestart {
		ids = append(ids, g.publish(t, topic, "", fmt.Sprintf("after the restart %d", i)).ID)
	}
	for _, c := range clients {
		waitEvents(t, c.c, len(ids), eventTimeout)
	}
	// A last event shows that nothing more was coming.
	ids = append(ids, g.publish(t, topic, "", "end").ID)
	for _, c := range clients {
		checkIDs(t, c.name, waitEvents(t, c.c, len(ids), eventTimeout), ids)
	}
	if s := cutClient.state(t); s.Opens <= opens {
		t.Errorf("the client did not open again after the restart: %+v", s)
	}
	t.Logf("%d events, %d cuts, %d connections through the proxy", len(ids), cuts, proxy.counts().accepted)
}
