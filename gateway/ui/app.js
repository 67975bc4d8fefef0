"use strict";
// The page to try the gateway: an EventSource on the topics chosen, a log of what it
// receives (newest first), and a form that publishes over HTTP. Whatever arrives is shown
// as text (textContent), never as HTML.
(() => {
  const $ = (id) => document.getElementById(id);
  const NOTICES = ["gap", "token_expired"]; // the gateway's own events
  const MAX_ENTRIES = 500; // log entries kept
  const MAX_DATA = 4000; // characters of data shown per entry

  let source = null; // the EventSource while connected
  let listened = new Set(); // the event types source has listeners for
  const extraTypes = new Set(); // types to listen to besides "message" and the notices
  let opens = 0;
  let reconnects = 0;
  let received = 0;

  const words = (s) => s.split(/[\s,]+/).filter(Boolean);

  function clock() {
    const d = new Date();
    const two = (n) => String(n).padStart(2, "0");
    return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}.${String(d.getMilliseconds()).padStart(3, "0")}`;
  }

  function clip(s) {
    return s.length > MAX_DATA ? `${s.slice(0, MAX_DATA)}\n… (${s.length - MAX_DATA} more characters)` : s;
  }

  function el(tag, className, text) {
    const e = document.createElement(tag);
    if (className) e.className = className;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // addEntry puts an entry at the top of the log. kind is "event", "gap", "token_expired",
  // "open", "error" or "closed"; fields are [name, value, shown] (shown defaults to value),
  // also kept as data-<name> attributes.
  function addEntry(kind, label, { fields = [], message, data } = {}) {
    const li = el("li", "entry");
    li.dataset.kind = kind;
    const meta = el("div", "meta");
    meta.append(el("time", "", clock()), el("span", "badge", label));
    for (const [name, value, shown] of fields) {
      li.dataset[name] = value;
      const f = el("span", "field");
      f.append(el("span", "name", name), " ", el("span", "value", shown ?? value));
      meta.append(f);
    }
    if (message) meta.append(el("span", "message", message));
    li.append(meta);
    if (data !== undefined) li.append(el("pre", "data", clip(data)));
    const log = $("log");
    log.prepend(li);
    while (log.childElementCount > MAX_ENTRIES) log.lastElementChild.remove();
    return li;
  }

  function setState(state, text) {
    $("state").dataset.state = state;
    $("state").textContent = text;
    $("disconnect").disabled = source === null;
  }

  function showCounters() {
    $("reconnects").textContent = String(reconnects);
    $("count").textContent = String(received);
  }

  // onEvent shows an event. The stream is opened with envelope=true, so an event's data
  // is {"topic","type","data"}; the gateway's notices are not wrapped.
  function onEvent(e) {
    if (e.target !== source) return;
    if (e.lastEventId) $("last-id").textContent = e.lastEventId;
    const id = ["id", e.lastEventId, e.lastEventId || "(none)"];
    if (NOTICES.includes(e.type)) {
      showNotice(e, id);
      return;
    }
    let type = e.type === "message" ? "" : e.type;
    let topic = "";
    let data = e.data;
    try {
      const env = JSON.parse(e.data);
      if (env && typeof env.topic === "string" && typeof env.data === "string") {
        ({ topic, data } = env);
        type = env.type || "";
      }
    } catch {
      // not an envelope: shown as it came
    }
    received++;
    showCounters();
    addEntry("event", "event", {
      fields: [id, ["type", type, type || "(none)"], ["topic", topic, topic || "(unknown)"]],
      data,
    });
  }

  function showNotice(e, id) {
    let info = {};
    try {
      info = JSON.parse(e.data) || {};
    } catch {
      // shown raw below
    }
    if (e.type === "gap") {
      addEntry("gap", "gap: events may be missing", {
        fields: [id, ["reason", String(info.reason ?? "")]],
        message: info.message,
        data: e.data,
      });
    } else {
      // To go on: a fresh token, and a stream that starts where this one ended.
      if (info.last_event_id) $("from").value = info.last_event_id;
      addEntry("token_expired", "token expired", {
        fields: [id],
        message: "the stream ended: enter a fresh token and connect again (the start is set to resume here)",
        data: e.data,
      });
    }
  }

  function listen(es, type) {
    if (listened.has(type)) return;
    listened.add(type);
    es.addEventListener(type, onEvent);
  }

  // addType shows events of type from now on.
  function addType(type) {
    if (type === "message" || NOTICES.includes(type)) return;
    extraTypes.add(type);
    if (source) listen(source, type);
  }

  // addError notes a lost connection; repeated ones, while the gateway is unreachable,
  // are counted on one entry.
  function addError() {
    const top = $("log").firstElementChild;
    if (top && top.dataset.kind === "error") {
      const n = Number(top.dataset.repeat || "1") + 1;
      top.dataset.repeat = String(n);
      top.querySelector(".badge").textContent = `connection lost (${n} tries)`;
      top.querySelector("time").textContent = clock();
      return;
    }
    addEntry("error", "connection lost", { message: "the browser reconnects after the retry delay, sending the last event id" });
  }

  function connect(ev) {
    ev.preventDefault();
    const topics = words($("topics").value);
    if (topics.length === 0) {
      addEntry("closed", "not connected", { message: "enter at least one topic" });
      $("topics").focus();
      return;
    }
    close();
    for (const t of words($("types").value)) addType(t);
    const q = new URLSearchParams();
    for (const t of topics) q.append("topic", t);
    q.set("envelope", "true");
    const from = $("from").value.trim();
    if (from) q.set("last_event_id", from);
    // A reconnection sends Last-Event-ID, which takes precedence: it resumes exactly.
    if ($("latest").checked) q.set("latest", "true");
    const token = $("token").value.trim();
    if (token) q.set("access_token", token);
    const url = `events?${q}`;

    const es = new EventSource(url);
    source = es;
    listened = new Set();
    opens = reconnects = received = 0;
    showCounters();
    $("last-id").textContent = "none";
    for (const t of ["message", ...NOTICES, ...extraTypes]) listen(es, t);
    es.addEventListener("open", () => {
      if (es !== source) return;
      opens++;
      if (opens > 1) reconnects++;
      showCounters();
      setState("open", opens > 1 ? "open (reconnected)" : "open");
      addEntry("open", opens > 1 ? "reconnected" : "connected", { message: `topics ${topics.join(" ")}` });
    });
    es.addEventListener("error", () => {
      if (es !== source) return;
      if (es.readyState === EventSource.CLOSED) {
        source = null;
        setState("closed", "closed: the stream was refused");
        explainRefusal(url);
        return;
      }
      setState("reconnecting", "reconnecting");
      addError();
    });
    setState("connecting", "connecting");
  }

  // close closes the EventSource, if any, and says so in the log.
  function close() {
    if (!source) return;
    source.close();
    source = null;
    addEntry("closed", "disconnected");
    setState("idle", "not connected");
  }

  function describe(status, body) {
    try {
      const e = JSON.parse(body);
      if (e && e.error) return `${status} ${e.code}: ${e.error}`;
    } catch {
      // not the gateway's JSON
    }
    return `${status}: ${body.slice(0, 300)}`;
  }

  // explainRefusal asks again to learn why the EventSource gave up: an EventSource is
  // not told the status or the body of a refusal.
  async function explainRefusal(url) {
    const ctrl = new AbortController();
    let message;
    try {
      const r = await fetch(url, { signal: ctrl.signal, cache: "no-store" });
      if (r.ok) {
        ctrl.abort();
        message = `the stream was refused, and now answers ${r.status}: connect again`;
      } else {
        message = describe(r.status, await r.text());
      }
    } catch (err) {
      message = `the gateway cannot be reached: ${err.message}`;
    }
    addEntry("closed", "refused", { message });
  }

  function showAnswer(outcome, text) {
    $("answer").dataset.outcome = outcome;
    $("answer").textContent = text;
  }

  function pretty(body) {
    try {
      return JSON.stringify(JSON.parse(body), null, 2);
    } catch {
      return body;
    }
  }

  async function publish(ev) {
    ev.preventDefault();
    const topic = $("pub-topic").value.trim();
    const type = $("pub-type").value.trim();
    if (!topic) {
      showAnswer("error", "enter a topic");
      $("pub-topic").focus();
      return;
    }
    if (type) addType(type);
    let url = `publish/${encodeURIComponent(topic)}`;
    if (type) url += `?event=${encodeURIComponent(type)}`;
    const headers = { "Content-Type": "text/plain; charset=utf-8" };
    const token = $("token").value.trim();
    if (token) headers.Authorization = `Bearer ${token}`;
    $("send").disabled = true;
    showAnswer("pending", "publishing…");
    try {
      const r = await fetch(url, { method: "POST", headers, body: $("pub-data").value, cache: "no-store" });
      const body = await r.text();
      showAnswer(r.ok ? "ok" : "error", `${r.status} ${r.statusText}`.trim() + "\n" + pretty(body));
    } catch (err) {
      showAnswer("error", `the request failed: ${err.message}`);
    } finally {
      $("send").disabled = false;
    }
  }

  $("subscribe").addEventListener("submit", connect);
  $("disconnect").addEventListener("click", close);
  $("publish").addEventListener("submit", publish);
  $("clear").addEventListener("click", () => $("log").replaceChildren());
})();
