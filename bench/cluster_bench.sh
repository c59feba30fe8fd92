#!/usr/bin/env bash
# Cluster-mode benchmarks over loopback (serve --nats, NATS JetStream as the log); one JSON line
# per scenario:
#   seed-single  100 subscribers, 10 events/s of 1 KiB, one standalone node (the baseline)
#   seed-nats1   the same, publisher on node A, subscribers on node B, one nats-server
#   seed-r3      the same on a 3-server NATS cluster with a 3-replica stream
#   acked        events/s one node gets acked through JetStream (one publisher, window 1000)
#   ceiling      what JetStream itself sustains here with a bare cnats client (bench/
#                jetstream_ceiling.cpp), with and without the ordered consumer every node runs,
#                with nats-server's CPU: the upper bound for `acked` on this machine
#   backfill     seconds a new node takes to copy BACKFILL_EVENTS events into its replica
# Env: BUILD_DIR (build), BENCH_DIR (/tmp), DURATION (10s), THREADS (2),
#      SCENARIOS ("seed-single seed-nats1 seed-r3 acked ceiling backfill"), BACKFILL_EVENTS (1000000)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BUILD_DIR:-build}/evstream
DIR=$(mktemp -d "${BENCH_DIR:-/tmp}/evstream-cluster-bench.XXXXXX")
PIDS=()
cleanup() {
  kill "${PIDS[@]}" 2>/dev/null || true
  wait "${PIDS[@]}" 2>/dev/null || true
  rm -rf "$DIR"
}
trap cleanup EXIT
DURATION=${DURATION:-10s}
command -v nats-server >/dev/null || { echo "cluster_bench: needs nats-server (make deps)" >&2; exit 1; }

free_port() {
  /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_nats NAME PORT [ROUTE_PORT ROUTES]: a JetStream server; waits until it is ready.
start_nats() {
  local name=$1 port=$2 args=()
  [[ $# -ge 4 ]] && args=(--cluster_name bench --cluster "nats://127.0.0.1:$3" --routes "$4")
  nats-server -js -a 127.0.0.1 -p "$port" -sd "$DIR/$name" -n "$name" "${args[@]}" \
    >"$DIR/$name.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 200); do grep -q "Server is ready" "$DIR/$name.log" && return; sleep 0.05; done
  echo "cluster_bench: $name did not start" >&2
  cat "$DIR/$name.log" >&2
  exit 1
}

# start_node NAME ARGS...: a serve node; sets NODE_URL and NODE_PID. Retries while a fresh NATS
# cluster has no JetStream meta leader yet (serve exits with an error until then).
start_node() {
  local name=$1
  shift
  for _ in $(seq 30); do
    rm -f "$DIR/$name.url"
    "$BIN" serve --port 0 --db "$DIR/$name.db" --log-level warn "$@" \
      >"$DIR/$name.url" 2>>"$DIR/$name.log" &
    NODE_PID=$!
    for _ in $(seq 200); do
      [[ -s $DIR/$name.url ]] && break
      kill -0 "$NODE_PID" 2>/dev/null || break
      sleep 0.05
    done
    if [[ -s $DIR/$name.url ]]; then
      PIDS+=("$NODE_PID")
      NODE_URL=$(head -1 "$DIR/$name.url")
      return
    fi
    wait "$NODE_PID" 2>/dev/null || true
    sleep 1
  done
  echo "cluster_bench: node $name did not start" >&2
  cat "$DIR/$name.log" >&2
  exit 1
}

stop_all() {
  kill "${PIDS[@]}" 2>/dev/null || true
  wait "${PIDS[@]}" 2>/dev/null || true
  PIDS=()
  rm -rf "${DIR:?}"/*
  sync
}

emit() {  # emit SCENARIO EXTRA_JSON [LOADTEST_REPORT]
  /usr/bin/python3 -c '
import json, sys, datetime
line = {"bench": "cluster", "scenario": sys.argv[1],
        "date": datetime.datetime.utcnow().isoformat() + "Z"}
line.update(json.loads(sys.argv[2]))
if len(sys.argv) > 3 and sys.argv[3]:
    r = json.loads(sys.argv[3])
    delivery = r.get("server_delivery") or {}
    line.update({"published": r["published"], "received": r["received"], "lost": r["lost"],
                 "p50_us": r["latency_us"]["p50"], "p99_us": r["latency_us"]["p99"],
                 "max_us": r["latency_us"]["max"],
                 "delivered_per_s": round(r["delivered_per_s"]),
                 "server_delivered_within_2ms": delivery.get("within_2ms"),
                 "loadtest_cpu_percent": round(r["self_cpu_percent"]), "error": r.get("error")})
print(json.dumps(line))' "$@"
}

seed() {  # seed SUBSCRIBER_URL PUBLISHER_URL SERVER_PID
  "$BIN" loadtest --url "$1" --publish-url "$2" --server-pid "$3" --clients 100 --rate 10 \
    --size 1KiB --duration "$DURATION" --threads "${THREADS:-2}" --json --slo '' || true
}

nats_urls() {  # the client URLs of the running NATS servers: nats_urls PORT...
  local out="" p
  for p in "$@"; do out+="${out:+,}nats://127.0.0.1:$p"; done
  echo "$out"
}

for s in ${SCENARIOS:-seed-single seed-nats1 seed-r3 acked ceiling backfill}; do
  case $s in
    seed-single)
      start_node single
      emit "$s" '{"nodes": 1, "nats": 0}' "$(seed "$NODE_URL" "$NODE_URL" "$NODE_PID")"
      stop_all ;;
    seed-nats1)
      port=$(free_port); start_nats nats1 "$port"
      start_node a --nats "nats://127.0.0.1:$port"; a=$NODE_URL
      start_node b --nats "nats://127.0.0.1:$port"
      emit "$s" '{"nodes": 2, "nats": 1, "replicas": 1}' "$(seed "$NODE_URL" "$a" "$NODE_PID")"
      stop_all ;;
    seed-r3)
      ports=("$(free_port)" "$(free_port)" "$(free_port)")
      routes=("$(free_port)" "$(free_port)" "$(free_port)")
      route_list=$(nats_urls "${routes[@]}")
      for i in 0 1 2; do start_nats "nats$i" "${ports[$i]}" "${routes[$i]}" "$route_list"; done
      urls=$(nats_urls "${ports[@]}")
      start_node a --nats "$urls" --nats-replicas 3; a=$NODE_URL
      start_node b --nats "$urls" --nats-replicas 3
      emit "$s" '{"nodes": 2, "nats": 3, "replicas": 3}' "$(seed "$NODE_URL" "$a" "$NODE_PID")"
      stop_all ;;
    acked)
      port=$(free_port); start_nats nats1 "$port"
      start_node a --nats "nats://127.0.0.1:$port"
      report=$("$BIN" loadtest --url "$NODE_URL" --server-pid "$NODE_PID" --clients 1 --rate 0 \
        --size 256 --duration 5s --json --slo '' || true)
      acked=$(/usr/bin/python3 -c 'import json, sys; print(round(json.loads(sys.argv[1])["published"] / 5))' "$report")
      emit "$s" "{\"nodes\": 1, \"nats\": 1, \"size\": 256, \"acked_per_s\": $acked}" "$report"
      stop_all ;;
    ceiling)
      port=$(free_port); start_nats nats1 "$port"
      nats_pid=${PIDS[-1]}
      for consume in 0 1; do
        for asap in 1 0; do
          before=$(awk '{print $14 + $15}' "/proc/$nats_pid/stat")
          start=$(date +%s%N)
          line=$("${BUILD_DIR:-build}/jetstream_ceiling" --url "nats://127.0.0.1:$port" \
            --events 200000 --size 256 --consume "$consume" --send-asap "$asap")
          elapsed_ms=$((($(date +%s%N) - start) / 1000000))
          ticks=$(($(awk '{print $14 + $15}' "/proc/$nats_pid/stat") - before))
          nats_cpu=$((ticks * 1000 * 100 / $(getconf CLK_TCK) / elapsed_ms))
          /usr/bin/python3 -c '
import json, sys, datetime
line = json.loads(sys.argv[1])
line.update({"bench": "cluster", "scenario": "ceiling", "nats_server_cpu_percent": int(sys.argv[2]),
             "date": datetime.datetime.utcnow().isoformat() + "Z"})
print(json.dumps(line))' "$line" "$nats_cpu"
        done
      done
      stop_all ;;
    backfill)
      events=${BACKFILL_EVENTS:-1000000}
      port=$(free_port); start_nats nats1 "$port"
      start_node a --nats "nats://127.0.0.1:$port"
      /usr/bin/python3 -c '
import sys
line = "{\"camera_id\":\"cam-%d\",\"objects\":[{\"label\":\"person\",\"confidence\":0.91}],\"n\":%d}\n"
with open(sys.argv[1], "w") as f:
    for i in range(int(sys.argv[2])):
        f.write(line % (i % 100, i))' "$DIR/events.ndjson" "$events"
      fill_start=$(date +%s%N)
      "$BIN" publish --url "$NODE_URL" --quiet <"$DIR/events.ndjson"
      fill_ms=$((($(date +%s%N) - fill_start) / 1000000))
      start=$(date +%s%N)
      start_node fresh --nats "nats://127.0.0.1:$port"
      for _ in $(seq 36000); do  # bounded: one hour
        last=$(/usr/bin/python3 -c 'import json, sys, urllib.request
print(json.load(urllib.request.urlopen(sys.argv[1].replace("ws://", "http://") + "/api/health"))["last_event_id"])' "$NODE_URL")
        [[ $last -ge $events ]] && break
        sleep 0.1
      done
      took_ms=$((($(date +%s%N) - start) / 1000000))
      emit "$s" "{\"events\": $events, \"fill_publish_ms\": $fill_ms, \"backfill_ms\": $took_ms, \"replica_last_id\": $last}"
      stop_all ;;
  esac
done
