package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The gateway's own page (GET /), driven in Chromium as a person would: through its
// forms, reading what it shows.

// uiPage is a tab showing the gateway's page, with the console messages it wrote.
type uiPage struct {
	*page
	console *syncList[chromedp.ConsoleMessage]
}

// openUI opens a tab on the page at pageURL and waits until it can be used. Console
// messages are recorded from before the page loads until the test ends.
func (b *browser) openUI(tb testing.TB, pageURL string) *uiPage {
	tb.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx)
	if err := firstCall(ctx, cancel); err != nil {
		cancel()
		tb.Fatalf("open a tab: %v", err)
	}
	p := &uiPage{page: &page{ctx: ctx, origin: pageURL}, console: &syncList[chromedp.ConsoleMessage]{}}
	messages := chromedp.Console(ctx) // subscribed now, before the page loads
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range messages {
			if err != nil {
				return
			}
			p.console.add(m)
		}
	}()
	tb.Cleanup(func() { cancel(); <-done })
	cctx, ccancel := context.WithTimeout(ctx, browserCallTimeout)
	defer ccancel()
	if err := chromedp.Do(cctx, chromedp.Navigate(pageURL), chromedp.WaitVisible(chromedp.ID("connect"))); err != nil {
		tb.Fatalf("load %s: %v", pageURL, err)
	}
	return p
}

// do runs actions on the page.
func (p *uiPage) do(tb testing.TB, what string, actions ...chromedp.Action[chromedp.Void]) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, browserCallTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		tb.Fatalf("page: %s: %v", what, err)
	}
}

// fill sets form fields by id: id, value, id, value… (chromedp.SetValue cannot set "").
func (p *uiPage) fill(tb testing.TB, idsAndValues ...string) {
	tb.Helper()
	const setValues = `((kv) => { for (let i = 0; i + 1 < kv.length; i += 2) document.getElementById(kv[i]).value = kv[i + 1]; })`
	eval[chromedp.Void](tb, p.page, jsCall(tb, setValues, idsAndValues))
}

func (p *uiPage) click(tb testing.TB, id string) {
	tb.Helper()
	p.do(tb, "click #"+id, chromedp.Click(chromedp.ID(id)))
}

// uiView is what the page shows.
type uiView struct {
	State      string    `json:"state"` // data-state of #state: idle, connecting, open, reconnecting, closed
	StateText  string    `json:"stateText"`
	Reconnects int       `json:"reconnects"`
	Count      int       `json:"count"`
	Outcome    string    `json:"outcome"` // of the last publish: none, pending, ok, error
	Answer     string    `json:"answer"`
	Entries    []uiEntry `json:"entries"` // the log, newest first
}

// uiEntry is one entry of the page's log.
type uiEntry struct {
	Kind   string `json:"kind"` // event, gap, token_expired, open, error, closed
	ID     string `json:"id"`
	Type   string `json:"type"`
	Topic  string `json:"topic"`
	Reason string `json:"reason"`
	Text   string `json:"text"` // the entry's line, as shown
	Data   string `json:"data"` // its data, as shown
	// Elements counts the elements inside the data: data is text, never markup.
	Elements int `json:"elements"`
}

const uiViewJS = `(() => {
  const $ = (id) => document.getElementById(id);
  return {
    state: $("state").dataset.state, stateText: $("state").textContent,
    reconnects: Number($("reconnects").textContent), count: Number($("count").textContent),
    outcome: $("answer").dataset.outcome, answer: $("answer").textContent,
    entries: Array.from($("log").children, (li) => ({
      kind: li.dataset.kind || "", id: li.dataset.id || "", type: li.dataset.type || "",
      topic: li.dataset.topic || "", reason: li.dataset.reason || "",
      text: li.querySelector(".meta").textContent,
      data: li.querySelector(".data") ? li.querySelector(".data").textContent : "",
      elements: li.querySelector(".data") ? li.querySelector(".data").childElementCount : 0,
    })),
  };
})()`

func (p *uiPage) view(tb testing.TB) uiView {
	tb.Helper()
	return eval[uiView](tb, p.page, uiViewJS)
}

// waitView polls the page until cond holds, failing the test after timeout.
func (p *uiPage) waitView(tb testing.TB, timeout time.Duration, what string, cond func(uiView) bool) uiView {
	tb.Helper()
	var v uiView
	pollUntil(tb, timeout, what, func() bool { v = p.view(tb); return cond(v) })
	return v
}

// entry returns the newest log entry that matches, if any.
func (v uiView) entry(match func(uiEntry) bool) (uiEntry, bool) {
	i := slices.IndexFunc(v.Entries, match)
	if i < 0 {
		return uiEntry{}, false
	}
	return v.Entries[i], true
}

func (v uiView) has(match func(uiEntry) bool) bool { _, ok := v.entry(match); return ok }

func kindIs(kind string) func(uiEntry) bool {
	return func(e uiEntry) bool { return e.Kind == kind }
}

func eventWithID(id string) func(uiEntry) bool {
	return func(e uiEntry) bool { return e.Kind == "event" && e.ID == id }
}

// publishForm publishes through the page's form and returns the answer it shows, which
// must be a success.
func (p *uiPage) publishForm(tb testing.TB, topic, typ, data string) publishResult {
	tb.Helper()
	before := p.view(tb).Answer
	p.fill(tb, "pub-topic", topic, "pub-type", typ, "pub-data", data)
	p.click(tb, "send")
	v := p.waitView(tb, eventTimeout, "the publish's answer", func(v uiView) bool {
		return (v.Outcome == "ok" || v.Outcome == "error") && v.Answer != before
	})
	status, body, _ := strings.Cut(v.Answer, "\n")
	var res publishResult
	if err := json.Unmarshal([]byte(body), &res); v.Outcome != "ok" || err != nil || res.ID == "" || res.Topic != topic {
		tb.Fatalf("publish through the page: %s %q: want 200 with an id on %s", status, body, topic)
	}
	return res
}

// screenshot saves the whole page as a PNG among the test's artifacts (kept with
// go test -artifacts).
func (p *uiPage) screenshot(t *testing.T, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, browserCallTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	path := filepath.Join(t.ArtifactDir(), name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

// errors returns the console's errors and exceptions, but for failed loads of the
// stream while the gateway is away, which the browser logs before it reconnects.
func (p *uiPage) errors() []chromedp.ConsoleMessage {
	var bad []chromedp.ConsoleMessage
	for _, m := range p.console.all() {
		away := m.Source == "network" && strings.Contains(m.URL, "/events?")
		if (m.Type == chromedp.ConsoleError || m.IsException()) && !away {
			bad = append(bad, m)
		}
	}
	return bad
}

// TestUIInBrowser uses the gateway's page in Chromium: it subscribes through the page's
// form to two filters, starting after an id beyond the stream (a gap notice), shows an
// event published through its own form and one published over NATS, with id, type and
// topic, as text; then the gateway restarts on the same port and data dir, and the page
// shows the reconnection and a new event. The console stays free of errors throughout.
func TestUIInBrowser(t *testing.T) {
	t.Parallel()
	requireChromium(t)
	g := startGateway(t, "GATEWAY_RETRY=500ms")
	epoch := epochOf(t, g.publish(t, "demo.form", "", "before the page").ID)
	b := newBrowser(t, chromedp.WindowSize(1280, 1000))
	p := b.openUI(t, g.url("/"))
	if v := p.view(t); v.State != "idle" || len(v.Entries) != 0 {
		t.Fatalf("a new page shows %+v, want idle with an empty log", v)
	}

	ahead := formatID(epoch, 1000)
	p.fill(t, "topics", " demo.form,demo.nats.* ", "types", "shipped", "from", ahead)
	p.click(t, "connect")
	v := p.waitView(t, eventTimeout, "the stream open, with a gap notice", func(v uiView) bool {
		return v.State == "open" && v.has(kindIs("gap"))
	})
	if gap, _ := v.entry(kindIs("gap")); gap.Reason != "ahead" || !strings.Contains(gap.Text, "gap") || !strings.Contains(gap.Data, ahead) {
		t.Errorf("gap entry %+v: want reason ahead, marked as a gap, naming %s", gap, ahead)
	}

	// Through the page's own form; then over NATS, with markup in the data.
	form := p.publishForm(t, "demo.form", "greeting", `{"n":1}`)
	_, js := g.natsConn(t)
	markup := `<b id="injected">bold?</b>`
	ack, err := js.PublishMsg(t.Context(), natsMsg("demo.nats.eu", "shipped", markup, ""))
	if err != nil {
		t.Fatalf("publish over NATS: %v", err)
	}
	natsID := formatID(epoch, ack.Sequence)
	v = p.waitView(t, eventTimeout, "both events", func(v uiView) bool {
		return v.has(eventWithID(form.ID)) && v.has(eventWithID(natsID))
	})
	for _, want := range []uiEntry{
		{Kind: "event", ID: form.ID, Type: "greeting", Topic: "demo.form", Data: `{"n":1}`},
		{Kind: "event", ID: natsID, Type: "shipped", Topic: "demo.nats.eu", Data: markup},
	} {
		got, _ := v.entry(eventWithID(want.ID))
		if got.Type != want.Type || got.Topic != want.Topic || got.Data != want.Data || got.Elements != 0 ||
			!strings.Contains(got.Text, want.ID) || !strings.Contains(got.Text, want.Topic) {
			t.Errorf("log entry %+v, want %+v shown as text", got, want)
		}
	}
	if injected := eval[bool](t, p.page, `document.getElementById("injected") !== null`); injected {
		t.Error("the event's data was inserted as HTML")
	}

	// The gateway goes away and comes back on the same port and data dir.
	g = g.restart(t, "GATEWAY_HTTP_ADDR="+g.httpAddr)
	p.waitView(t, eventTimeout, "the page to show a reconnection", func(v uiView) bool {
		return v.State == "open" && v.Reconnects >= 1 && v.has(kindIs("error"))
	})
	after := p.publishForm(t, "demo.form", "greeting", `{"n":2}`)
	v = p.waitView(t, eventTimeout, "the event published after the restart", func(v uiView) bool {
		return v.has(eventWithID(after.ID))
	})

	// Newest first: the last event on top, and every event once.
	var kinds, ids []string
	for _, e := range v.Entries {
		kinds = append(kinds, e.Kind)
		if e.Kind == "event" {
			ids = append(ids, e.ID)
		}
	}
	if want := []string{after.ID, natsID, form.ID}; !slices.Equal(ids, want) || v.Count != 3 {
		t.Errorf("events shown %v (count %d), want %v, newest first", ids, v.Count, want)
	}
	if kinds[0] != "event" || kinds[len(kinds)-1] != "open" || !strings.Contains(v.StateText, "reconnected") {
		t.Errorf("log kinds %v, state %q: want the newest event on top, the first connection last, the state reconnected", kinds, v.StateText)
	}
	p.screenshot(t, "ui.png")
	if errs := p.errors(); len(errs) > 0 {
		t.Errorf("console errors: %v", errs)
	}
	t.Logf("%d console messages, log: %v", p.console.count(), kinds)
}

// TestUIToken uses the page with auth on: without a token the stream is refused and the
// page says why; with one, the stream carries it as access_token and the publish form as
// a Bearer header; when it expires, the page marks the token_expired notice, the
// reconnection with the same token is refused, and a fresh token resumes where the
// stream ended.
func TestUIToken(t *testing.T) {
	t.Parallel()
	requireChromium(t)
	g := startGateway(t, "GATEWAY_AUTH_SECRET="+authSecret, "GATEWAY_RETRY=500ms")
	b := newBrowser(t)
	p := b.openUI(t, g.url("/"))

	p.fill(t, "topics", "news")
	p.click(t, "connect")
	v := p.waitView(t, eventTimeout, "the refusal explained", func(v uiView) bool {
		return v.State == "closed" && v.has(kindIs("closed"))
	})
	if e, _ := v.entry(kindIs("closed")); !strings.Contains(e.Text, "401 unauthorized") {
		t.Errorf("refusal shown as %q, want the gateway's 401 unauthorized", e.Text)
	}

	token := mint(t, "u", time.Now().Add(2*time.Second), []string{"news"}, []string{"news"})
	p.fill(t, "token", token)
	p.click(t, "connect")
	p.waitView(t, eventTimeout, "the stream open", func(v uiView) bool { return v.State == "open" })
	res := p.publishForm(t, "news", "", "extra")
	v = p.waitView(t, eventTimeout, "the event", func(v uiView) bool { return v.has(eventWithID(res.ID)) })
	if e, _ := v.entry(eventWithID(res.ID)); e.Type != "" || !strings.Contains(e.Text, "(none)") || e.Topic != "news" {
		t.Errorf("untyped event shown as %+v", e)
	}
	v = p.waitView(t, 20*time.Second, "token_expired, then the refusal", func(v uiView) bool {
		return v.has(kindIs("token_expired")) && v.State == "closed" && v.Entries[0].Kind == "closed"
	})
	if e, _ := v.entry(kindIs("token_expired")); e.ID != res.ID || !strings.Contains(strings.ToLower(e.Text), "token expired") {
		t.Errorf("token_expired shown as %+v, want marked, with the last event's id %s", e, res.ID)
	}
	if e := v.Entries[0]; !strings.Contains(e.Text, "401 unauthorized") {
		t.Errorf("after expiry the log shows %+v on top, want the 401 refusal", e)
	}
	// A fresh token resumes where the stream ended.
	missed := mustPublish(t, g, "news", "while away", bearer(mint(t, "svc", time.Now().Add(time.Hour), nil, []string{"news"})))
	p.fill(t, "token", mint(t, "u", time.Now().Add(time.Hour), []string{"news"}, nil))
	p.click(t, "connect")
	p.waitView(t, eventTimeout, "the event published while away", func(v uiView) bool { return v.has(eventWithID(missed.ID)) })
	p.screenshot(t, "ui-token.png")
}

// TestUILatest: with "newest event of each topic" ticked, the page starts with the current
// value of every matching topic, and then shows new events.
func TestUILatest(t *testing.T) {
	t.Parallel()
	requireChromium(t)
	g := startGateway(t)
	g.publish(t, "prices.a", "", "a1")
	g.publish(t, "prices.b", "", "b1")
	a2 := g.publish(t, "prices.a", "", "a2")
	p := newBrowser(t).openUI(t, g.url("/"))
	p.fill(t, "topics", "prices.*")
	p.do(t, "tick latest", chromedp.Click(chromedp.ID("latest")))
	p.click(t, "connect")
	v := p.waitView(t, eventTimeout, "the newest value of each topic", func(v uiView) bool { return v.Count == 2 })
	if got, _ := v.entry(kindIs("event")); got.ID != a2.ID || got.Data != "a2" {
		t.Errorf("newest entry %+v, want a2 (%s)", got, a2.ID)
	}
	if v.has(func(e uiEntry) bool { return e.Data == "a1" }) {
		t.Errorf("the page shows a1, an older value of prices.a")
	}
	live := g.publish(t, "prices.b", "", "b2")
	p.waitView(t, eventTimeout, "a new event after the newest values", func(v uiView) bool { return v.has(eventWithID(live.ID)) })
}
