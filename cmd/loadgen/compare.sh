#!/usr/bin/env bash
# compare.sh runs every loadgen scenario against natsse's gateway, against nginx with the
# nchan module and against bare (./bare: a net/http broadcaster that keeps events in memory
# only), one after the other on this machine, and prints a table of the figures and the
# ratios natsse/nchan and natsse/bare. Client and servers share the machine: the figures are
# this machine's, with whatever else runs on it (the table's header shows its load).
#
#   cmd/loadgen/compare.sh                       # full size, about 9 minutes on 2 cores
#   SCALE=0.2 cmd/loadgen/compare.sh             # every count and duration times 0.2
#   SCENARIOS="replay fanout" cmd/loadgen/compare.sh
#   BARE=0 cmd/loadgen/compare.sh                # without bare: natsse and nchan only
#
# It builds the gateway, bare and loadgen, starts the gateway on a fresh data dir and a
# random port with its caps off (they are for clients on the internet, not for one load
# generator), nginx with nchan.conf and bare on random ports; all stop when it ends. It needs
# Go, nginx and nchan (Debian: apt-get install libnginx-mod-nchan; NCHAN_MODULE overrides the
# module's path). The raw result lines are kept in $OUT (default: a temporary file, named at
# the end).
set -euo pipefail

SCALE=${SCALE:-1}
SCENARIOS=${SCENARIOS:-"idle publish replay fanout storm slow deliver"}
NCHAN_MODULE=${NCHAN_MODULE:-/usr/lib/nginx/modules/ngx_nchan_module.so}
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
BARE=${BARE:-1}

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
work=$(mktemp -d)
OUT=${OUT:-$(mktemp -t loadgen-compare.XXXXXX)}
gw_pid= nginx_pid= bare_pid=

cleanup() {
	[ -n "$gw_pid" ] && kill -TERM "$gw_pid" 2>/dev/null && wait "$gw_pid" 2>/dev/null || true
	[ -n "$bare_pid" ] && kill -TERM "$bare_pid" 2>/dev/null && wait "$bare_pid" 2>/dev/null || true
	[ -n "$nginx_pid" ] && kill -TERM "$nginx_pid" 2>/dev/null && wait "$nginx_pid" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

# scaled N prints N times SCALE, at least 1.
scaled() { awk -v n="$1" -v s="$SCALE" 'BEGIN { v = int(n * s + 0.5); print (v < 1 ? 1 : v) }'; }

[ -x "$NGINX" ] || { echo "compare.sh: nginx not found" >&2; exit 1; }
[ -f "$NCHAN_MODULE" ] || { echo "compare.sh: no nchan module at $NCHAN_MODULE" >&2; exit 1; }

echo "building the gateway, bare and loadgen…" >&2
(cd "$root" && go build -o "$work/gateway" ./cmd/gateway && go build -o "$work/loadgen" ./cmd/loadgen &&
	go build -o "$work/bare" ./cmd/loadgen/bare)

# logged_addr LOG PID WHAT prints the address a server logged ("WHAT started … http=ADDR"),
# waiting up to 10 s for it while the server runs.
logged_addr() {
	local addr=
	for _ in $(seq 100); do
		addr=$(sed -n "/$3 started/s/.* http=\([^ ]*\).*/\1/p" "$1")
		[ -n "$addr" ] && break
		kill -0 "$2" 2>/dev/null || break
		sleep 0.1
	done
	echo "$addr"
}

# The gateway on a free port: it logs the address it listens on.
GATEWAY_HTTP_ADDR=127.0.0.1:0 GATEWAY_NATS_ADDR=off GATEWAY_DATA_DIR="$work/data" \
	GATEWAY_MAX_STREAMS=0 GATEWAY_MAX_STREAMS_PER_CLIENT=0 GATEWAY_PUBLISH_RATE=0 GATEWAY_UI=false \
	"$work/gateway" >"$work/gateway.log" 2>&1 &
gw_pid=$!
gw_addr=$(logged_addr "$work/gateway.log" "$gw_pid" gateway)
[ -n "$gw_addr" ] || { echo "compare.sh: the gateway did not start:" >&2; cat "$work/gateway.log" >&2; exit 1; }

# nginx on a random free port; another process may take it first: then try another.
mkdir -p "$work/nginx"
for attempt in 1 2 3 4 5; do
	port=$(shuf -i 20000-32000 -n 1)
	ss -Htln "sport = :$port" | grep -q . && continue
	sed -e "s|@MODULE@|$NCHAN_MODULE|g" -e "s|@DIR@|$work/nginx|g" -e "s|@PORT@|$port|g" \
		"$here/nchan.conf" >"$work/nginx/nginx.conf"
	"$NGINX" -p "$work/nginx" -c "$work/nginx/nginx.conf" -e "$work/nginx/error.log" -g 'daemon off;' \
		>"$work/nginx/out.log" 2>&1 &
	nginx_pid=$!
	for _ in $(seq 50); do
		curl -fs "http://127.0.0.1:$port/nchan_status" >/dev/null 2>&1 && break 2
		kill -0 "$nginx_pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -TERM "$nginx_pid" 2>/dev/null; wait "$nginx_pid" 2>/dev/null || true
	nginx_pid=
done
[ -n "$nginx_pid" ] || { echo "compare.sh: nginx did not start:" >&2; cat "$work/nginx/error.log" "$work/nginx/out.log" >&2; exit 1; }

targets="natsse nchan"
if [ "$BARE" = 1 ]; then
	"$work/bare" -addr 127.0.0.1:0 >"$work/bare.log" 2>&1 &
	bare_pid=$!
	bare_addr=$(logged_addr "$work/bare.log" "$bare_pid" bare)
	[ -n "$bare_addr" ] || { echo "compare.sh: bare did not start:" >&2; cat "$work/bare.log" >&2; exit 1; }
	targets="$targets bare"
fi

# args SCENARIO prints loadgen's flags for it at this SCALE.
args() {
	case $1 in
	idle) echo "-conns $(scaled 10000)" ;;
	publish) echo "-duration $(scaled 10)s" ;;
	replay) echo "-events $(scaled 100000)" ;;
	fanout) echo "-conns $(scaled 1000) -events $(scaled 2000)" ;;
	storm) echo "-conns $(scaled 5000)" ;;
	slow) echo "-events $(scaled 3000)" ;;
	deliver) echo "-conns $(scaled 2000) -rate 1000 -duration $(scaled 10)s" ;;
	esac
}

: >"$OUT"
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) at the start; SCALE=$SCALE" | tee -a "$OUT" >&2
for sc in $SCENARIOS; do
	for target in $targets; do
		case $target in
		natsse) url="http://$gw_addr" pid=$gw_pid ;;
		nchan) url="http://127.0.0.1:$port" pid=$nginx_pid ;;
		bare) url="http://$bare_addr" pid=$bare_pid ;;
		esac
		echo "== $sc against $target: loadgen -scenario $sc $(args "$sc")" >&2
		# shellcheck disable=SC2046 # args are words
		line=$("$work/loadgen" -target "$target" -url "$url" -pid "$pid" -scenario "$sc" $(args "$sc") |
			grep '^result ' || true)
		[ -n "$line" ] || line="result scenario=$sc target=$target value=nan unit=? ok=false error=no_result"
		echo "$line" >&2
		echo "$line" >>"$OUT"
	done
done
echo "machine: load average $(cut -d' ' -f1-3 /proc/loadavg) at the end" | tee -a "$OUT" >&2

# The table: one row per scenario, from the result lines; a column per server and the ratio
# of natsse's figure to each other's.
awk -v targets="$targets" '
function field(line, key,   m) { return match(line, " " key "=[^ ]*") ? substr(line, RSTART + length(key) + 2, RLENGTH - length(key) - 2) : "" }
function ratio(a, b) { return (how != "-" && b + 0 != 0 && a != "nan" && b != "nan") ? sprintf("%.2f", a / b) : "-" }
/^result / {
	sc = field($0, "scenario"); t = field($0, "target")
	if (!(sc in seen)) { seen[sc] = 1; order[++n] = sc }
	value[sc, t] = field($0, "value"); unit[sc] = field($0, "unit")
	verdict[sc, t] = (field($0, "ok") == "true" ? "ok" : "FAIL") (field($0, "exact") != "" ? " " field($0, "exact") : "")
}
END {
	better["KiB/stream"] = "lower"; better["s"] = "lower"; better["streams_cut"] = "-"
	nt = split(targets, tg, " ")
	printf "%-8s %-14s", "scenario", "figure"
	for (j = 1; j <= nt; j++) printf " %12s", tg[j]
	for (j = 2; j <= nt; j++) printf " %13s", "natsse/" tg[j]
	checks = tg[1]; for (j = 2; j <= nt; j++) checks = checks " | " tg[j]
	printf "  %-6s checks (%s)\n", "better", checks
	for (i = 1; i <= n; i++) {
		sc = order[i]; u = unit[sc]
		how = (u in better) ? better[u] : "higher"
		printf "%-8s %-14s", sc, u
		for (j = 1; j <= nt; j++) printf " %12s", value[sc, tg[j]]
		for (j = 2; j <= nt; j++) printf " %13s", ratio(value[sc, tg[1]], value[sc, tg[j]])
		checks = verdict[sc, tg[1]]; for (j = 2; j <= nt; j++) checks = checks " | " verdict[sc, tg[j]]
		printf "  %-6s %s\n", how, checks
	}
}' "$OUT"
echo "result lines: $OUT" >&2
