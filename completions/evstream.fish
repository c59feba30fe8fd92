# fish completion for evstream(1)
# Install: copy to ~/.config/fish/completions/ or /usr/share/fish/vendor_completions.d/.
# Keep the option lists in sync with `evstream SUB --help`: tests/integration/test_docs.py fails
# when they drift.

complete -c evstream -f

# Top level
complete -c evstream -n __fish_use_subcommand -s h -l help -d 'Print help and exit'
complete -c evstream -n __fish_use_subcommand -l version -d 'Print version and exit'
complete -c evstream -n __fish_use_subcommand -a serve -d 'Persist events and broadcast them to WebSocket subscribers'
complete -c evstream -n __fish_use_subcommand -a publish -d 'Publish events: NDJSON from stdin, or JSON arguments'
complete -c evstream -n __fish_use_subcommand -a tail -d 'Follow live events (resumes across reconnects)'
complete -c evstream -n __fish_use_subcommand -a replay -d 'Replay stored events in id order, from a database or a server'
complete -c evstream -n __fish_use_subcommand -a loadtest -d 'Measure latency, loss and memory with N subscribers'

# Every subcommand
complete -c evstream -n '__fish_seen_subcommand_from serve publish tail replay loadtest' -s h -l help -d 'Print help and exit'
complete -c evstream -n '__fish_seen_subcommand_from serve publish tail replay loadtest' -r -F -l config -d 'Read options from this TOML file (keys: the long flags)'
complete -c evstream -n '__fish_seen_subcommand_from serve publish tail replay loadtest' -l print-config -d 'Print the effective configuration as a --config file and exit'

# serve
set -l serve '__fish_seen_subcommand_from serve'
complete -c evstream -n $serve -x -l host -d 'Address to listen on (default 127.0.0.1)'
complete -c evstream -n $serve -x -l port -d 'Port to listen on, 0: a free one (default 8000)'
complete -c evstream -n $serve -r -F -l db -d 'SQLite database file, or :memory: (default ./evstream.db)'
complete -c evstream -n $serve -x -l durability -a 'normal\t"survives kill -9" full\t"also survives power loss"' -d 'Store durability (default normal)'
complete -c evstream -n $serve -x -l ping-interval -d 'Ping subscribers this often (default 30s)'
complete -c evstream -n $serve -x -l client-queue -d 'Messages queued per subscriber before closing it (default 4096)'
complete -c evstream -n $serve -x -l client-queue-bytes -d 'Bytes queued per subscriber before closing it (default 1MiB)'
complete -c evstream -n $serve -x -l max-message-bytes -d 'Largest accepted message (default 1MiB)'
complete -c evstream -n $serve -x -l max-clients -d 'WebSocket connections accepted at once (default 16384)'
complete -c evstream -n $serve -x -l retain-age -d 'Delete events older than this (e.g. 7d)'
complete -c evstream -n $serve -x -l retain-events -d 'Keep at most this many events'
complete -c evstream -n $serve -x -l token -d 'Require this token to publish'
complete -c evstream -n $serve -x -l read-token -d 'Require this token to subscribe and read'
complete -c evstream -n $serve -x -l allow-origin -d 'Browser origin allowed to connect (repeatable)'
complete -c evstream -n $serve -r -F -l cert -d 'TLS certificate (PEM)'
complete -c evstream -n $serve -r -F -l key -d 'TLS private key (PEM)'
complete -c evstream -n $serve -x -l log-format -a 'text json' -d 'Log format on stderr (default text)'
complete -c evstream -n $serve -x -l log-level -a 'debug info warn error' -d 'Log level (default info)'
complete -c evstream -n $serve -x -l nats -d 'Cluster mode: NATS JetStream server URLs'
complete -c evstream -n $serve -x -l nats-stream -d 'JetStream stream shared by the nodes (default EVSTREAM)'
complete -c evstream -n $serve -x -l nats-replicas -d 'Copies JetStream keeps when creating the stream (default 1)'
complete -c evstream -n $serve -x -l nats-dedupe-window -d 'How long JetStream remembers keys (default 2m)'

# publish
set -l publish '__fish_seen_subcommand_from publish'
complete -c evstream -n $publish -x -l url -d 'Server URL; several (A,B or repeated): fail over in order (default $EVSTREAM_URL or ws://localhost:8000)'
complete -c evstream -n $publish -x -l topic -d 'Topic for events that do not name one'
complete -c evstream -n $publish -x -l key-field -d 'Take the idempotency key from this data field'
complete -c evstream -n $publish -x -l token -d 'Publish token (default $EVSTREAM_TOKEN)'
complete -c evstream -n $publish -x -l window -d 'Unacked events in flight (default 1000)'
complete -c evstream -n $publish -x -l retry-timeout -d 'Give up (exit 69) after this long unreachable (default 30s)'
complete -c evstream -n $publish -s q -l quiet -d 'No summary line on success'

# tail
set -l tail '__fish_seen_subcommand_from tail'
complete -c evstream -n $tail -x -l url -d 'Server URL; several (A,B or repeated): fail over in order (default $EVSTREAM_URL or ws://localhost:8000)'
complete -c evstream -n $tail -x -l topic -d 'Only these topics (repeatable)'
complete -c evstream -n $tail -x -l where -d 'Only events whose data matches, e.g. objects.label = person (repeatable)'
complete -c evstream -n $tail -x -l since -d 'Start after an event id, a duration ago or an RFC 3339 time'
complete -c evstream -n $tail -x -s n -l last -d 'Start with the last N stored events'
complete -c evstream -n $tail -l json -d 'NDJSON records even on a terminal'
complete -c evstream -n $tail -x -l format -d 'Template per event: {id} {time} {topic} {data} {data.field}'
complete -c evstream -n $tail -x -l count -d 'Exit after N events'
complete -c evstream -n $tail -l no-color -d 'No colours'
complete -c evstream -n $tail -l wide -d 'On a terminal, print each event whole instead of cutting it to the width'
complete -c evstream -n $tail -x -l exec -a '(__fish_complete_command)' -d 'Run CMD per event, record on its stdin'
complete -c evstream -n $tail -x -l token -d 'Read token'
complete -c evstream -n $tail -x -l retry-timeout -d 'Give up (exit 69) after this long unreachable (default never)'

# replay
set -l replay '__fish_seen_subcommand_from replay'
complete -c evstream -n $replay -r -F -l db -d 'Read this database file (read-only)'
complete -c evstream -n $replay -x -l url -d 'Read this server\'s REST API; several (A,B or repeated): fail over in order'
complete -c evstream -n $replay -x -l since -d 'Start after an event id, or at an RFC 3339 time or a duration ago'
complete -c evstream -n $replay -x -l until -d 'Stop at an event id (included), an RFC 3339 time or a duration ago'
complete -c evstream -n $replay -x -l where -d 'Only events whose data matches, e.g. objects.label = person (repeatable)'
complete -c evstream -n $replay -x -l topic -d 'Only these topics (repeatable)'
complete -c evstream -n $replay -x -l speed -d 'Pace by the original times: 1 real time, 10 ten times faster, 0 no pauses (default 0)'
complete -c evstream -n $replay -l data-only -d 'Only the data objects (input for publish)'
complete -c evstream -n $replay -x -l to -d 'Republish to this server instead of stdout; several (A,B or repeated): fail over in order'
complete -c evstream -n $replay -x -l token -d 'Publish token for --to (default $EVSTREAM_TOKEN)'
complete -c evstream -n $replay -x -l read-token -d 'Read token for --url (default: --token)'
complete -c evstream -n $replay -x -l retry-timeout -d 'With --to: give up (exit 69) after this long unreachable (default 30s)'

# loadtest
set -l loadtest '__fish_seen_subcommand_from loadtest'
complete -c evstream -n $loadtest -x -l url -d 'Server URL; several (A,B or repeated): fail over in order (default $EVSTREAM_URL or ws://localhost:8000)'
complete -c evstream -n $loadtest -x -l clients -d 'Subscribers to open (default 100)'
complete -c evstream -n $loadtest -x -l duration -d 'How long to publish (default 10s)'
complete -c evstream -n $loadtest -x -l rate -d 'Events per second, 0: as fast as acked (default 10)'
complete -c evstream -n $loadtest -x -l size -d 'Approximate size of each event (default 1KiB)'
complete -c evstream -n $loadtest -x -l ramp -d 'Connections opened per second, 0: all at once'
complete -c evstream -n $loadtest -x -l topic -d 'Publish and subscribe on this topic'
complete -c evstream -n $loadtest -x -l window -d 'Unacked events in flight when --rate is 0 (default 1000)'
complete -c evstream -n $loadtest -x -l threads -d 'Threads receiving for the subscribers (default 1)'
complete -c evstream -n $loadtest -x -l server-pid -a '(__fish_complete_pids)' -d 'Read server RSS and CPU from /proc for this pid'
complete -c evstream -n $loadtest -x -l publish-url -d 'Publish through this server instead (another cluster node)'
complete -c evstream -n $loadtest -x -l token -d 'Publish token (default $EVSTREAM_TOKEN)'
complete -c evstream -n $loadtest -x -l read-token -d 'Read token'
complete -c evstream -n $loadtest -x -l slo -d 'Checks, e.g. p99<100ms,loss=0,connected=100%'
complete -c evstream -n $loadtest -l json -d 'One JSON report on stdout instead of the table'
