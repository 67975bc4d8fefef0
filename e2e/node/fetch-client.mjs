// Reads an SSE stream with @microsoft/fetch-event-source (the fetch-based client apps use
// when they must send headers) and prints the same JSON lines as sse-client.mjs: one
// {"type","data","lastEventId"} per message it dispatches, {"open": true} when a response
// is accepted, {"error": …} when a stream ends or fails. Like EventSource, it reconnects
// after the server's retry delay with Last-Event-ID. Usage: node fetch-client.mjs URL
// It exits when stdin closes.
import { fetchEventSource } from "@microsoft/fetch-event-source";

// The library was written for browsers: its retry timers live on window, and it removes a
// visibilitychange listener from document when it stops (even with openWhenHidden).
globalThis.window ??= globalThis;
globalThis.document ??= { hidden: false, addEventListener() {}, removeEventListener() {} };

const [url] = process.argv.slice(2);
const print = (o) => process.stdout.write(JSON.stringify(o) + "\n");

// A response EventSource would not accept ends the client for good.
class Refused extends Error {}

const stop = new AbortController();
fetchEventSource(url, {
  signal: stop.signal,
  openWhenHidden: true,
  fetch,
  async onopen(res) {
    const type = res.headers.get("content-type") ?? "";
    if (res.status !== 200 || !type.startsWith("text/event-stream")) {
      throw new Refused(`status ${res.status}, Content-Type ${type}`);
    }
    print({ open: true });
  },
  onmessage(m) {
    print({ type: m.event || "message", data: m.data, lastEventId: m.id });
  },
  onclose() {
    // The library resolves when the body ends; throwing makes it reconnect instead.
    throw new Error("the stream ended");
  },
  onerror(err) {
    print({ error: String(err?.message ?? err) });
    if (err instanceof Refused) throw err;
    // undefined: retry after the server's retry delay.
  },
}).catch(() => {});

process.stdin.on("close", () => {
  stop.abort();
  process.exit(0);
});
process.stdin.resume();
