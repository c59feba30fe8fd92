#!/usr/bin/env bash
# A three-node evstream cluster on loopback: three nats-server processes with JetStream, routed to
# each other, and three `evstream serve --nats ... --nats-replicas 3` nodes on one stream. Prints
# every URL, then waits; Ctrl-C stops everything and removes the data directory.
#
#     examples/cluster.sh                      # or: make cluster
#     PORTS="9001 9002 9003" examples/cluster.sh
#
# Settings (environment):
#     EVSTREAM     the binary (default: `evstream` on PATH, else build/evstream of this checkout)
#     PORTS        the serve nodes' ports        (default "8001 8002 8003")
#     NATS_PORTS   the NATS client ports         (default "4222 4223 4224")
#     ROUTE_PORTS  the NATS cluster route ports  (default "6222 6223 6224")
#     KEEP=1       keep the data directory (databases, JetStream stores, logs) after Ctrl-C
set -u

EXAMPLES_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [ -z "${EVSTREAM:-}" ]; then
  EVSTREAM=$(command -v evstream || echo "$EXAMPLES_DIR/../build/evstream")
fi
read -r -a ports <<<"${PORTS:-8001 8002 8003}"
read -r -a nats_ports <<<"${NATS_PORTS:-4222 4223 4224}"
read -r -a route_ports <<<"${ROUTE_PORTS:-6222 6223 6224}"

fail() {
  echo "cluster: $*" >&2
  exit 1
}
[ -x "$EVSTREAM" ] || fail "no evstream binary at $EVSTREAM (run make, or set EVSTREAM)"
command -v nats-server >/dev/null || fail "nats-server is not installed (make deps installs it)"
[ ${#ports[@]} -eq 3 ] && [ ${#nats_ports[@]} -eq 3 ] && [ ${#route_ports[@]} -eq 3 ] ||
  fail "PORTS, NATS_PORTS and ROUTE_PORTS each need three ports"

dir=$(mktemp -d "${TMPDIR:-/tmp}/evstream-cluster.XXXXXX") || exit 1
pids=()
stop() {
  kill "${pids[@]}" 2>/dev/null
  wait "${pids[@]}" 2>/dev/null
  if [ "${KEEP:-}" = 1 ]; then echo "cluster: data kept in $dir"; else rm -rf "$dir"; fi
}
trap 'trap - INT TERM; stop; echo "cluster: stopped"; exit 0' INT TERM

routes=""
for p in "${route_ports[@]}"; do routes+="${routes:+,}nats://127.0.0.1:$p"; done
nats_urls=""
for i in 0 1 2; do
  name="nats$((i + 1))"
  nats-server -js -a 127.0.0.1 -p "${nats_ports[$i]}" -sd "$dir/$name" -n "$name" \
    --cluster_name evstream --cluster "nats://127.0.0.1:${route_ports[$i]}" --routes "$routes" \
    >"$dir/$name.log" 2>&1 &
  pids+=($!)
  nats_urls+="${nats_urls:+,}nats://127.0.0.1:${nats_ports[$i]}"
done
for i in 0 1 2; do
  for _ in $(seq 100); do  # up to 10 s each
    grep -q "Server is ready" "$dir/nats$((i + 1)).log" 2>/dev/null && break
    sleep 0.1
  done
  grep -q "Server is ready" "$dir/nats$((i + 1)).log" ||
    { cat "$dir/nats$((i + 1)).log" >&2; stop; fail "nats$((i + 1)) did not start"; }
done

start_node() {  # $1: index; prints the node's URL line, or fails after ~30 s of retries
  local i=$1 node="node$(($1 + 1))" pid url part
  # JetStream answers only once the routed servers elected a meta leader (a few seconds after a
  # cold start): until then serve exits with an error, so start it again (bounded).
  for _ in $(seq 30); do
    "$EVSTREAM" serve --host 127.0.0.1 --port "${ports[$i]}" --db "$dir/$node.db" \
      --nats "$nats_urls" --nats-replicas 3 >&3 2>>"$dir/$node.log" &
    pid=$!
    local partial=""
    for _ in $(seq 300); do  # serve prints its URL or exits within seconds; 30 s at most
      kill -0 "$pid" 2>/dev/null || break
      # A read that times out keeps what it got so far in `part` (a line can arrive just as the
      # timeout fires): carry it over, or the URL loses its first characters.
      if IFS= read -r -t 0.1 part <&3; then
        url=$partial$part
        pids+=("$pid")
        echo "cluster: $node $url  (dashboard http://127.0.0.1:${ports[$i]}/, log $dir/$node.log)"
        return 0
      fi
      partial+=$part
    done
    kill "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    sleep 1
  done
  cat "$dir/$node.log" >&2
  return 1
}
mkfifo "$dir/urls"
exec 3<>"$dir/urls"  # read-write: opening never blocks, and serve never sees a closed reader
for i in 0 1 2; do
  start_node "$i" || { stop; fail "node$((i + 1)) did not start"; }
done
echo "cluster: NATS $nats_urls (stream EVSTREAM, 3 replicas), data in $dir"
echo "cluster: try  evstream tail --url ws://127.0.0.1:${ports[2]},ws://127.0.0.1:${ports[1]}"
echo "cluster: and  echo '{\"camera_id\":\"cam-1\"}' | evstream publish --url ws://127.0.0.1:${ports[0]}"
echo "cluster: Ctrl-C stops all six processes"
wait "${pids[@]}"
