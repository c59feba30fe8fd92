#!/usr/bin/env bash
# evstream pipeline recipes. Each function is one recipe; run one by name:
#
#     examples/pipelines.sh                      # list the recipes
#     examples/pipelines.sh detect               # fake detector | evstream publish
#     examples/pipelines.sh watch_live -n 5      # extra arguments go to the main evstream command
#     COUNT=100 RATE=0 examples/pipelines.sh detect
#
# or source it (`. examples/pipelines.sh`) and call the functions from your shell, or just read it
# and copy the lines you need. Settings come from the environment:
#
#     EVSTREAM      the binary (default: `evstream` on PATH, else build/evstream of this checkout)
#     EVSTREAM_URL  the server (default ws://localhost:8000); EVSTREAM_TOKEN its token, if any
#     STAGING_URL   where the staging recipes copy to (default ws://staging:8000)
#     DB            the server's database file, for `replay --db` (default ./evstream.db)
#     RATE COUNT CAMERAS SEED   the fake detector's settings (default 5/s, forever, 4 cameras)
#
# The jq recipes need jq (apt-get install jq).

EXAMPLES_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [ -z "${EVSTREAM:-}" ]; then
  EVSTREAM=$(command -v evstream || echo "$EXAMPLES_DIR/../build/evstream")
fi
: "${EVSTREAM_URL:=ws://localhost:8000}"
: "${STAGING_URL:=ws://staging:8000}"
: "${DB:=./evstream.db}"
export EVSTREAM_URL  # publish, tail and loadtest default to it

# So the recipes below read exactly as you would type them.
evstream() { "$EVSTREAM" "$@"; }
detector() {
  /usr/bin/python3 "$EXAMPLES_DIR/detector.py" --rate "${RATE:-5}" --count "${COUNT:-0}" \
    --cameras "${CAMERAS:-4}" ${SEED:+--seed "$SEED"}
}

# --- Feeding events in -----------------------------------------------------------------------

# Fake detections into the server. --key-field makes a re-sent detection (same detection_id,
# e.g. a re-run with the same SEED) a duplicate instead of a second event.
detect() {
  detector | evstream publish --key-field detection_id "$@"
}

# The same, on a topic of its own: `evstream tail --topic cams` and `?topic=cams` see only these.
detect_topic() {
  detector | evstream publish --topic "${TOPIC:-cams}" --key-field detection_id "$@"
}

# --- Watching --------------------------------------------------------------------------------

# Coloured one-liners on a terminal, NDJSON records in a pipe.
watch_live() {
  evstream tail "$@"
}

# One line per event from a template: id, time, camera, description.
watch_format() {
  evstream tail --format '{id} {time} {data.camera_id} {data.description}' "$@"
}

# NDJSON through jq: a table of id, camera and labels, tab-separated.
watch_labels() {
  evstream tail --json "$@" |
    jq -r '[.id, .data.camera_id, (.data.objects // [] | map(.label) | join(","))] | @tsv'
}

# Only the events that saw a person with confidence of at least 0.9, as compact data.
watch_people() {
  evstream tail --json "$@" |
    jq -c 'select(any(.data.objects[]?; .label == "person" and .confidence >= 0.9)) | .data'
}

# Stream processing: republish confident detections (>= 0.9) of the topic `events` to the topic
# `alerts`, where `evstream tail --topic alerts` or a `?topic=alerts` client follows only those.
# (Reading one topic and writing another keeps it from consuming its own output.)
alerts() {
  evstream tail --json --topic events "$@" |
    jq -c --unbuffered 'select(.data.confidence >= 0.9) | .data + {source_id: .id}' |
    evstream publish --topic alerts --key-field source_id
}

# --- Looking back ----------------------------------------------------------------------------

# Events per camera in the database, straight from the SQLite file (works while serve runs).
per_camera() {
  evstream replay --db "$DB" --data-only "$@" |
    jq -s -c 'group_by(.camera_id) | map({camera: .[0].camera_id, events: length})'
}

# The last hour, copied to staging at ten times the original pace.
replay_to_staging() {
  evstream replay --db "$DB" --since "${SINCE:-1h}" --speed "${SPEED:-10}" --to "$STAGING_URL" "$@"
}

# One topic's data, from this server to staging through a pipe.
copy_topic() {
  evstream replay --url "$EVSTREAM_URL" --topic "${TOPIC:-alerts}" --data-only "$@" |
    evstream publish --url "$STAGING_URL" --topic "${TOPIC:-alerts}"
}

# --- Measuring -------------------------------------------------------------------------------

# Latency, loss and memory with 100 subscribers; exit 1 when an acceptance target is missed.
loadtest() {
  evstream loadtest --clients "${CLIENTS:-100}" --duration "${DURATION:-10s}" "$@"
}

# --- The whole thing -------------------------------------------------------------------------

# A server with a throwaway database plus the fake detector publishing into it; prints the
# dashboard URL and runs until Ctrl-C, then stops both and removes the database. `make demo`.
# (A subshell function, so its traps and exit never touch a shell that sourced this file.)
demo() (
  port=${PORT:-8000}
  dir=$(mktemp -d "${TMPDIR:-/tmp}/evstream-demo.XXXXXX") || exit 1
  mkfifo "$dir/url"
  exec 3<>"$dir/url"  # read-write: opening never blocks, and serve never sees a closed reader
  evstream serve --host 127.0.0.1 --port "$port" --db "$dir/demo.db" >&3 2>"$dir/serve.log" &
  serve_pid=$!
  if ! read -r -t 10 url <&3; then
    echo "demo: the server did not start (port $port taken? PORT=8001 make demo picks another):" >&2
    cat "$dir/serve.log" >&2
    kill "$serve_pid" 2>/dev/null
    wait "$serve_pid" 2>/dev/null
    rm -rf "$dir"
    exit 1
  fi
  exec 4< <(detector)  # a process substitution, so that its pid is known too
  detector_pid=$!
  evstream publish --url "$url" --key-field detection_id -q <&4 &
  publish_pid=$!
  exec 4<&-
  stop() {
    kill "$detector_pid" "$publish_pid" "$serve_pid" 2>/dev/null
    wait "$detector_pid" "$publish_pid" "$serve_pid" 2>/dev/null
    rm -rf "$dir"
  }
  trap 'trap - INT TERM; stop; echo "demo: stopped"; exit 0' INT TERM
  echo "demo: server $url, database $dir/demo.db, log $dir/serve.log"
  echo "demo: fake detector publishing ${RATE:-5} events/s from ${CAMERAS:-4} cameras"
  echo "demo: dashboard http://127.0.0.1:$port/ (Ctrl-C stops)"
  wait "$publish_pid"
  status=$?
  trap - INT TERM
  echo "demo: the publisher stopped (status $status); server log:" >&2
  tail -n 20 "$dir/serve.log" >&2
  stop
  exit 1
)

# --- Running a recipe by name ----------------------------------------------------------------

recipes() {
  declare -F | awk '{print $3}' |
    grep -vxE 'evstream|detector|recipes|main|stop' | sort
}

main() {
  if [ $# -eq 0 ] || [ "$1" = -h ] || [ "$1" = --help ]; then
    echo "usage: ${0##*/} RECIPE [ARGS...]   (ARGS go to the main evstream command)"
    echo "recipes:"
    recipes | sed 's/^/  /'
    return 0
  fi
  if ! recipes | grep -qxF -- "$1"; then
    echo "${0##*/}: no recipe named '$1'; run it without arguments for the list" >&2
    return 2
  fi
  if [ ! -x "$EVSTREAM" ]; then
    echo "${0##*/}: no evstream binary at $EVSTREAM: build it (make) or set EVSTREAM" >&2
    return 1
  fi
  "$@"
}

# Run a recipe when executed; only define the functions when sourced.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -o pipefail
  main "$@"
fi
