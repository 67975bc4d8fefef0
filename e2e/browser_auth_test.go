package e2e

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestBrowserTokenRefresh lets the cookie token of a page's EventSource expire: the stream
// ends with token_expired, the page sets a fresh cookie, and Chromium reconnects by itself
// and resumes from the last event id, with nothing lost and nothing twice.
func TestBrowserTokenRefresh(t *testing.T) {
	t.Parallel()
	requireChromium(t)
	pageSrv := servePage(t)
	// A retry long enough to publish while the page is away: it must catch that up.
	g := startGateway(t, "GATEWAY_AUTH_SECRET="+authSecret, "GATEWAY_CORS_ORIGINS="+pageSrv.URL, "GATEWAY_RETRY=2s")
	writer := bearer(mint(t, "svc", time.Now().Add(time.Hour), nil, []string{">"}))
	b := newBrowser(t)
	p := b.open(t, pageSrv.URL+"/")
	// Cookies are per host, whatever the port: the page's cookie goes to the gateway too.
	short := mint(t, "u", time.Now().Add(time.Second), []string{"news"}, nil)
	eval[chromedp.Void](t, p, jsCall(t, "setCookie", "natsse_token="+short+"; path=/"))
	src := p.openSourceWith(t, "news", g.url("/events?topic=news"), []string{"token_expired"}, true)
	fresh := mint(t, "u", time.Now().Add(time.Hour), []string{"news"}, nil)
	eval[chromedp.Void](t, p, jsCall(t, "refreshCookieOnExpiry", "news", "natsse_token="+fresh+"; path=/"))
	waitOpen(t, src)

	before := mustPublish(t, g, "news", "before", writer)
	evs := waitEvents(t, src, 2, 20*time.Second) // the event, then token_expired at exp + 5 s
	if evs[0].LastEventID != before.ID || evs[1].Type != "token_expired" || evs[1].LastEventID != before.ID {
		t.Fatalf("got %+v, want the event %s then token_expired", evs, before.ID)
	}
	after := mustPublish(t, g, "news", "after", writer)
	if s := src.state(t); s.Opens != 1 {
		t.Fatalf("the page reconnected before the event was published (%+v): it could arrive live", s)
	}
	evs = waitEvents(t, src, 3, eventTimeout)
	if got := evs[2]; got.Data != "after" || got.LastEventID != after.ID {
		t.Fatalf("after the refresh: %+v, want %s", evs, after.ID)
	}
	if s := src.state(t); s.Opens != 2 {
		t.Errorf("EventSource state %+v: want two opens (the second with the fresh cookie)", s)
	}
}

// TestBrowserManyStreamsTLS opens ten EventSources on one page to a gateway serving HTTPS:
// over HTTP/2 all ten receive events, where HTTP/1.1 would stall the seventh.
func TestBrowserManyStreamsTLS(t *testing.T) {
	t.Parallel()
	requireChromium(t)
	pageSrv := servePage(t)
	dir := t.TempDir()
	writeCert(t, dir, 1)
	g := startGateway(t, "GATEWAY_TLS_CERT_FILE="+filepath.Join(dir, "cert.pem"), "GATEWAY_TLS_KEY_FILE="+filepath.Join(dir, "key.pem"),
		"GATEWAY_CORS_ORIGINS="+pageSrv.URL)
	b := newBrowser(t, chromedp.Flag("ignore-certificate-errors", true))
	p := b.open(t, pageSrv.URL+"/")
	https := "https://" + g.httpAddr
	var srcs []*pageSource
	for i := 0; i < 10; i++ {
		srcs = append(srcs, p.openSource(t, "s"+string(rune('a'+i)), https+"/events?topic=many", nil))
	}
	for _, s := range srcs {
		waitOpen(t, s)
	}
	// Publish over plain HTTP/1.1 from the test, through the same TLS listener.
	g.useClient(https, insecureTransport())
	res := g.publish(t, "many", "", "to ten")
	for i, s := range srcs {
		if evs := waitEvents(t, s, 1, eventTimeout); evs[0].LastEventID != res.ID || !strings.Contains(evs[0].Data, "ten") {
			t.Fatalf("source %d got %+v, want %s", i, evs, res.ID)
		}
	}
}

// TestBrowserQueryTokenExpires gives a page's EventSource a token in the URL: when it
// expires, the stream ends with token_expired, the reconnection with the same URL gets 401,
// and the EventSource stops for good.
func TestBrowserQueryTokenExpires(t *testing.T) {
	t.Parallel()
	requireChromium(t)
	pageSrv := servePage(t)
	g := startGateway(t, "GATEWAY_AUTH_SECRET="+authSecret, "GATEWAY_CORS_ORIGINS="+pageSrv.URL, "GATEWAY_RETRY=200ms")
	b := newBrowser(t)
	p := b.open(t, pageSrv.URL+"/")
	short := mint(t, "u", time.Now().Add(time.Second), []string{"news"}, nil)
	src := p.openSource(t, "news", g.url("/events?topic=news&access_token="+short), []string{"token_expired"})
	waitOpen(t, src)
	final := waitState(t, src, 20*time.Second, "the EventSource closed for good", func(s clientState) bool { return s.ReadyState == 2 })
	evs := src.events(t, 0)
	if final.Opens != 1 || len(evs) != 1 || evs[0].Type != "token_expired" {
		t.Fatalf("state %+v, events %+v: want one open, then token_expired, then closed", final, evs)
	}
}
