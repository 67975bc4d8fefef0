package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// browserStartTimeout bounds the start of Chromium, and the opening of a tab.
const browserStartTimeout = 60 * time.Second

// browserCallTimeout bounds one call into a page.
const browserCallTimeout = 30 * time.Second

// skipOrFail skips the test because something it needs is not installed, or fails it
// when CI=true: CI installs everything, so there a missing tool is an error.
func skipOrFail(tb testing.TB, msg string) {
	tb.Helper()
	if os.Getenv("CI") == "true" {
		tb.Fatalf("%s (CI=true: failing instead of skipping)", msg)
	}
	tb.Skip(msg)
}

// requireChromium returns the path of Chromium. Without it the test is skipped (failed
// when CI=true). Tests call it first, so that they skip before starting anything.
func requireChromium(tb testing.TB) string {
	tb.Helper()
	for _, name := range []string{"chromium", "/usr/bin/chromium"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	skipOrFail(tb, "chromium not found: install Debian's chromium package to run browser tests")
	return ""
}

// browser is a headless Chromium, driven over the DevTools protocol.
type browser struct {
	ctx context.Context // the browser's first context: the browser lives as long as it
	out *logLines       // Chromium's output
}

// newBrowser starts a headless Chromium with a new, temporary profile. It is closed when
// the test ends. Without Chromium the test is skipped (failed when CI=true).
// Options in extra are added to the usual ones.
func newBrowser(tb testing.TB, extra ...chromedp.ExecAllocatorOption) *browser {
	tb.Helper()
	path := requireChromium(tb)
	b := &browser{out: newLogLines()}
	// Without a user-data-dir flag, chromedp makes a temporary profile directory and
	// removes it once the browser has exited.
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), append([]chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		// Every tab must reconnect on time, whether it is in front or not.
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-backgrounding-occluded-windows", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.CombinedOutput(b.out),
	}, extra...)...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	b.ctx = ctx
	tb.Cleanup(func() {
		cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
		if err := chromedp.Cancel(cctx); err != nil {
			tb.Logf("closing chromium: %v", err)
		}
		ccancel()
		cancel()
		cancelAlloc()
		b.out.close()
		if tb.Failed() {
			tb.Logf("chromium output:\n%s", b.output(40))
		}
	})
	// The first call starts the browser, which lives as long as that call's context:
	// it can have no deadline, so a timer stands in for one.
	if err := firstCall(ctx, cancelAlloc); err != nil {
		tb.Fatalf("start chromium (%s): %v\n%s", path, err, b.output(40))
	}
	return b
}

// output returns the last n lines of Chromium's output, without the noise of every start
// here: it finds no D-Bus, and Debian's wrapper script trips on a test of its own.
func (b *browser) output(n int) string {
	var lines []string
	for _, l := range b.out.lines() {
		if !strings.Contains(l, "dbus") && !strings.HasPrefix(l, "/usr/bin/chromium: ") {
			lines = append(lines, l)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// firstCall runs the first (empty) call on a chromedp context, which starts its browser
// or opens its tab, and cancels it with abort if that takes longer than
// browserStartTimeout.
func firstCall(ctx context.Context, abort func()) error {
	timer := time.AfterFunc(browserStartTimeout, abort)
	err := chromedp.Do(ctx)
	if !timer.Stop() && err != nil {
		err = fmt.Errorf("no answer within %s: %w", browserStartTimeout, err)
	}
	return err
}

// page is a tab of a browser showing the test page (testdata/sse-page.html).
type page struct {
	ctx    context.Context
	origin string
}

// open opens a new tab on pageURL and waits for the page to load. The tab is closed when
// the test ends.
func (b *browser) open(tb testing.TB, pageURL string) *page {
	tb.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx)
	tb.Cleanup(cancel)
	if err := firstCall(ctx, cancel); err != nil {
		tb.Fatalf("open a tab: %v", err)
	}
	p := &page{ctx: ctx, origin: strings.TrimSuffix(pageURL, "/")}
	cctx, ccancel := context.WithTimeout(ctx, browserCallTimeout)
	defer ccancel()
	if err := chromedp.Do(cctx, chromedp.Navigate(pageURL)); err != nil {
		tb.Fatalf("navigate to %s: %v", pageURL, err)
	}
	return p
}

// eval evaluates a JavaScript expression in p (awaiting it if it is a promise) and
// decodes its value into a T.
func eval[T any](tb testing.TB, p *page, expr string) T {
	tb.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, browserCallTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		if len(expr) > 200 {
			expr = expr[:200] + "…"
		}
		tb.Fatalf("page %s: evaluate %s: %v", p.origin, expr, err)
	}
	return v
}

// jsCall builds the JavaScript call fn(args...), each argument as JSON (which is valid
// JavaScript, U+2028 and U+2029 escaped by encoding/json).
func jsCall(tb testing.TB, fn string, args ...any) string {
	tb.Helper()
	parts := make([]string, len(args))
	for i, a := range args {
		b, err := json.Marshal(a)
		if err != nil {
			tb.Fatalf("%s: argument %d: %v", fn, i, err)
		}
		parts[i] = string(b)
	}
	return fn + "(" + strings.Join(parts, ", ") + ")"
}

// pageSource is an EventSource of a page, opened by name.
type pageSource struct {
	p    *page
	name string
}

// openSource opens new EventSource(url) in p, listening to "message", "gap" and types.
func (p *page) openSource(tb testing.TB, name, url string, types []string) *pageSource {
	tb.Helper()
	return p.openSourceWith(tb, name, url, types, false)
}

// openSourceWith is openSource, sending the gateway's cookies when withCredentials.
func (p *page) openSourceWith(tb testing.TB, name, url string, types []string, withCredentials bool) *pageSource {
	tb.Helper()
	if types == nil {
		types = []string{}
	}
	eval[chromedp.Void](tb, p, jsCall(tb, "openSource", name, url, types, withCredentials))
	return &pageSource{p: p, name: name}
}

func (s *pageSource) state(tb testing.TB) clientState {
	tb.Helper()
	return eval[clientState](tb, s.p, jsCall(tb, "sourceState", s.name))
}

func (s *pageSource) events(tb testing.TB, from int) []clientEvent {
	tb.Helper()
	return eval[[]clientEvent](tb, s.p, jsCall(tb, "sourceEvents", s.name, from))
}

// waitOpen waits until the EventSource has fired open, so that the gateway serves it.
func waitOpen(tb testing.TB, c sseClient) {
	tb.Helper()
	waitState(tb, c, eventTimeout, "the stream to open", func(s clientState) bool { return s.Opens > 0 })
}

// servePage serves the test page at / of a new local HTTP server: a page origin other
// than the gateway's. It is closed when the test ends.
func servePage(tb testing.TB) *httptest.Server {
	tb.Helper()
	html, err := os.ReadFile(filepath.Join("testdata", "sse-page.html"))
	if err != nil {
		tb.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.Write(html)
	}))
	tb.Cleanup(srv.Close)
	return srv
}

// TestBrowserCorpus publishes every tricky payload and event type of the corpus over HTTP
// and NATS to a page of another origin, which listens with EventSource in Chromium. Every
// event must arrive exactly as the standard says a browser delivers it: data with line
// breaks as LF, type, lastEventId the id the gateway gave; in order, each once.
func TestBrowserCorpus(t *testing.T) {
	t.Parallel()
	requireChromium(t)
	pageSrv := servePage(t)
	g := startGateway(t, "GATEWAY_CORS_ORIGINS="+pageSrv.URL)
	b := newBrowser(t)
	p := b.open(t, pageSrv.URL+"/")

	corpus := trickyCorpus()
	src := p.openSource(t, "corpus", g.url("/events?topic=corpus"), corpusTypes(corpus))
	waitOpen(t, src)

	want := publishCorpus(t, g, "corpus", corpus)
	// A last event shows that nothing more was coming.
	end := g.publish(t, "corpus", "", "end")
	want = append(want, expectedEvent{what: "end", clientEvent: clientEvent{Type: "message", Data: "end", LastEventID: end.ID}})
	checkCorpus(t, waitEvents(t, src, len(want), eventTimeout), want)
	if s := src.state(t); s.Opens != 1 || s.Errors != 0 || s.ReadyState != 1 {
		t.Errorf("EventSource state %+v: want one open, no error, readyState 1 (open)", s)
	}
}
