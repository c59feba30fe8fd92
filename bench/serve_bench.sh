#!/usr/bin/env bash
# Server benchmarks over loopback: a fresh `evstream serve` (durable SQLite store) per scenario,
# driven by `evstream loadtest --json`; prints one JSON line per scenario.
#   a: 100 subscribers, 10 events/s of 1 KiB          (latency)
#   b: 1,000 subscribers, 200 events/s of 512 B       (latency, loss)
#   c: 100 subscribers, publisher as fast as acks go  (delivered messages/s)
#   d: 10,000 idle subscribers                         (server RSS per subscriber)
#   w: scenario a with bench/ws_latency.js (Node's ws) as the generator: a cross-check with a
#      client that is not this project's code
#   m: scenario a with bench/ws_floor.cpp (one epoll thread, plain sockets) as the generator: the
#      floor a load client can reach here, to check loadtest as an instrument
#   f0/f1: field filters. 1,000 subscribers, 200 events/s of 512 B over 100 cameras; f1 with each
#      subscriber filtering server-side on 2 cameras (where=camera_id in ..., a different pair
#      each), f0 the same run unfiltered
#   g0/g1: 100 unfiltered subscribers at 200 events/s of 512 B (100 cameras), g1 with 900
#      filtered bystanders beside them (bench/ws_bystanders.js: one camera each)
# Each line has the end-to-end figures loadtest measured and the server's own view from /metrics
# (evstream_delivery_seconds: acceptance to the write into each subscriber's socket).
# Env: BUILD_DIR (build), BENCH_DIR (/tmp), DURATION (10s), SCENARIOS ("a b c d w m f0 f1 g0 g1"),
#      THREADS (loadtest's receiving threads; default 1, which costs it the least CPU, and 2 for
#      scenario a, whose 100 deliveries of one event arrive together), SERVE_THREADS (serve
#      --threads; default: serve's own, one per core), REPS (3: runs of each scenario, in rounds)
# Every line carries the git revision ("rev", "+dirty" with uncommitted changes) and "rep".
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BUILD_DIR:-build}/evstream
DIR=$(mktemp -d "${BENCH_DIR:-/tmp}/evstream-bench.XXXXXX")
trap 'kill "${SERVER_PID:-0}" 2>/dev/null || true; rm -rf "$DIR"' EXIT
DURATION=${DURATION:-10s}
REV=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD 2>/dev/null || REV=$REV+dirty
export REV REP=1

start_server() {
  rm -f "$DIR"/bench.db*
  sync  # writeback left by the previous run (or store_append) must not land inside this one
  "$BIN" serve --port 0 --db "$DIR/bench.db" --log-level warn --max-clients 20000 \
    ${SERVE_THREADS:+--threads "$SERVE_THREADS"} >"$DIR/url" 2>"$DIR/serve.log" &
  SERVER_PID=$!
  for _ in $(seq 100); do [[ -s $DIR/url ]] && break; sleep 0.05; done
  URL=$(head -1 "$DIR/url")
  [[ -n $URL ]] || { echo "serve_bench: server did not start" >&2; cat "$DIR/serve.log" >&2; exit 1; }
}

stop_server() {
  kill -TERM "$SERVER_PID"
  wait "$SERVER_PID" || true
}

scrape_metrics() {
  /usr/bin/python3 -c 'import sys, urllib.request
print(urllib.request.urlopen(sys.argv[1].replace("ws://", "http://") + "/metrics").read().decode())' "$URL"
}

# The server's own view from /metrics (loadtest reports it itself; the ws generator does not):
# the share of deliveries written within 2 ms and 20 ms.
server_delivery() {
  /usr/bin/python3 -c '
import json, re, sys
buckets = {float(le): float(n) for le, n in
           re.findall(r"^evstream_delivery_seconds_bucket\{le=\"([^\"]+)\"\} (\S+)$",
                      sys.argv[1], re.M)}
total = max(buckets.values(), default=0)
print(json.dumps({f"server_delivered_within_{name}": round(buckets.get(s, 0) / total, 4)
                  if total else None for name, s in (("2ms", 0.002), ("20ms", 0.02))}))' "$1"
}

# Scenario a driven by Node's ws instead of evstream loadtest.
ws_scenario() {
  start_server
  local report metrics
  report=$(NODE_PATH=/usr/share/nodejs node bench/ws_latency.js --url "$URL" --clients 100 \
    --rate 10 --size 1024 --duration "${DURATION%s}")
  metrics=$(scrape_metrics)
  stop_server
  /usr/bin/python3 -c '
import datetime, json, os, sys
r = json.loads(sys.argv[1])
r.update(json.loads(sys.argv[2]))
r.update({"scenario": "w", "date": datetime.datetime.utcnow().isoformat() + "Z",
          "rev": os.environ["REV"], "rep": int(os.environ["REP"])})
print(json.dumps(r))' "$report" "$(server_delivery "$metrics")"
}

# Scenario a driven by bench/ws_floor.cpp: one epoll thread on plain sockets, no libwebsockets,
# no evstream code. What loadtest adds on top of it is the instrument's own cost.
floor_scenario() {
  start_server
  local report metrics
  report=$("${BUILD_DIR:-build}/ws_floor" "${URL##*:}" 100 10 1024 "${DURATION%s}")
  metrics=$(scrape_metrics)
  stop_server
  /usr/bin/python3 -c '
import datetime, json, os, sys
r = json.loads(sys.argv[1])
r["lost"] = r["expected"] - r["received"]
r.update(json.loads(sys.argv[2]))
r.update({"bench": "serve", "scenario": "m", "date": datetime.datetime.utcnow().isoformat() + "Z",
          "rev": os.environ["REV"], "rep": int(os.environ["REP"])})
print(json.dumps(r))' "$report" "$(server_delivery "$metrics")"
}

# BYSTANDERS=N in a scenario's environment: N filtered subscribers (Node) beside loadtest's.
start_bystanders() {
  BYSTANDERS_OUT=$DIR/bystanders.out
  NODE_PATH=/usr/share/nodejs node bench/ws_bystanders.js --url "$URL" --clients "$1" \
    --cameras 100 >"$BYSTANDERS_OUT" 2>"$DIR/bystanders.log" &
  BYSTANDERS_PID=$!
  for _ in $(seq 600); do
    grep -q ready "$BYSTANDERS_OUT" 2>/dev/null && return 0
    kill -0 "$BYSTANDERS_PID" 2>/dev/null || break
    sleep 0.05
  done
  echo "serve_bench: bystanders did not connect" >&2
  cat "$DIR/bystanders.log" >&2
  exit 1
}

stop_bystanders() {  # prints their JSON report
  kill -TERM "$BYSTANDERS_PID"
  wait "$BYSTANDERS_PID" || true
  tail -1 "$BYSTANDERS_OUT"
}

loadtest_threads() { echo "${THREADS:-${LOADTEST_THREADS:-1}}"; }

scenario() {
  local name=$1
  shift
  start_server
  local report bystanders='{}'
  [[ -n ${BYSTANDERS:-} ]] && start_bystanders "$BYSTANDERS"
  report=$("$BIN" loadtest --url "$URL" --json --server-pid "$SERVER_PID" --slo '' \
    --threads "$(loadtest_threads)" "$@" || true)
  [[ -n ${BYSTANDERS:-} ]] && bystanders=$(stop_bystanders)
  stop_server
  /usr/bin/python3 -c '
import datetime, json, os, sys
r = json.loads(sys.argv[3])
clients = r["clients"]
delivery = r.get("server_delivery") or {}
growth = (r["server_rss_after"] or 0) - (r["server_rss_before"] or 0)
share = lambda name: round(delivery[name], 4) if delivery.get(name) is not None else None
print(json.dumps({"bench": "serve", "scenario": sys.argv[1], "args": sys.argv[2],
                  "serve_threads": sys.argv[5] or "cores", "loadtest_threads": int(sys.argv[6]),
                  "date": datetime.datetime.utcnow().isoformat() + "Z",
                  "rev": os.environ["REV"], "rep": int(os.environ["REP"]),
                  "connected": r["connected"], "published": r["published"],
                  "expected": r["expected"], "received": r["received"], "lost": r["lost"],
                  "p50_us": r["latency_us"]["p50"], "p99_us": r["latency_us"]["p99"],
                  "max_us": r["latency_us"]["max"], "delivered_per_s": round(r["delivered_per_s"]),
                  "rss_growth_bytes": growth, "rss_per_client_bytes": round(growth / clients),
                  "server_cpu_percent": r["server_cpu_percent"],
                  "loadtest_cpu_percent": round(r["self_cpu_percent"]),
                  "server_rss_bytes": r["server_rss_after"],
                  "server_delivered_within_1ms": share("within_1ms"),
                  "server_delivered_within_2ms": share("within_2ms"),
                  "server_delivered_within_20ms": share("within_20ms"),
                  "server_p50_at_most_us": round(delivery["p50_at_most"] * 1e6)
                  if delivery.get("p50_at_most") is not None else None,
                  "server_p99_at_most_us": round(delivery["p99_at_most"] * 1e6)
                  if delivery.get("p99_at_most") is not None else None,
                  "server_delivery_buckets": delivery.get("buckets"),
                  **{"bystander_" + k: v for k, v in json.loads(sys.argv[4]).items()},
                  "error": r.get("error")}))' "$name" "$*" "$report" "$bystanders" "${SERVE_THREADS:-}" \
    "$(loadtest_threads)"
}

# Rounds of every scenario but d, then d's rounds: closing 10,000 connections leaves the kernel
# a minute of TIME_WAIT timers, whose softirq work lands on (and is counted for) the next server.
ALL=${SCENARIOS:-a b c d w m f0 f1 g0 g1}
OTHERS=""
for s in $ALL; do [[ $s == d ]] || OTHERS+="$s "; done
ROUNDS=()
for REP in $(seq "${REPS:-3}"); do ROUNDS+=("$REP:$OTHERS"); done
if [[ " $ALL " == *" d "* ]]; then
  for REP in $(seq "${REPS:-3}"); do ROUNDS+=("$REP:d"); done
fi
for round in "${ROUNDS[@]}"; do
REP=${round%%:*}
for s in ${round#*:}; do
  case $s in
    a) LOADTEST_THREADS=2 scenario a --clients 100 --rate 10 --size 1KiB --duration "$DURATION" ;;
    b) scenario b --clients 1000 --rate 200 --size 512 --duration "$DURATION" --ramp 2000 ;;
    c) scenario c --clients 100 --rate 0 --size 256 --duration 5s ;;
    d) scenario d --clients 10000 --rate 1 --size 256 --duration 2s ;;
    w) ws_scenario ;;
    m) floor_scenario ;;
    f0) scenario f0 --clients 1000 --rate 200 --size 512 --duration "$DURATION" --ramp 2000 \
      --cameras 100 ;;
    f1) scenario f1 --clients 1000 --rate 200 --size 512 --duration "$DURATION" --ramp 2000 \
      --cameras 100 --where-cameras 2 ;;
    g0) scenario g0 --clients 100 --rate 200 --size 512 --duration "$DURATION" --cameras 100 ;;
    g1) BYSTANDERS=900 scenario g1 --clients 100 --rate 200 --size 512 --duration "$DURATION" \
      --cameras 100 ;;
  esac
done
done
