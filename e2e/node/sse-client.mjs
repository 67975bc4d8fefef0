// Reads an SSE stream with the npm eventsource package (the most used non-browser client)
// and prints one JSON line per event: {"type","data","lastEventId"}. Gap notices and
// errors are printed too, as {"error": …}. Usage: node sse-client.mjs URL [COUNT]
// It exits after COUNT events (default: never) or when stdin closes.
import { EventSource } from "eventsource";

const [url, countArg] = process.argv.slice(2);
const want = countArg ? Number(countArg) : Infinity;
let seen = 0;
const types = new Set(["message"]);
const es = new EventSource(url);

function print(e) {
  process.stdout.write(JSON.stringify({ type: e.type, data: e.data, lastEventId: e.lastEventId }) + "\n");
  if (++seen >= want) {
    es.close();
    process.exit(0);
  }
}

// EventSource dispatches typed events only to listeners of that type: the test names the
// types it publishes in the URL's hash (#types=a,b), after the ones always listened to.
const hash = new URL(url).hash.replace(/^#types=/, "");
for (const t of hash ? hash.split(",") : []) types.add(decodeURIComponent(t));
types.add("gap");
for (const t of types) es.addEventListener(t, print);
es.onopen = () => process.stdout.write(JSON.stringify({ open: true }) + "\n");
es.onerror = (err) => process.stdout.write(JSON.stringify({ error: String(err?.message ?? err) }) + "\n");
process.stdin.on("close", () => { es.close(); process.exit(0); });
process.stdin.resume();
