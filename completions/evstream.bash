# bash completion for evstream(1)
# Install: copy to /usr/share/bash-completion/completions/evstream, or `source` it from ~/.bashrc.
# Self-contained (does not need the bash-completion package). Keep the option lists in sync with
# `evstream SUB --help`: tests/integration/test_docs.py fails when they drift.

# Sets COMPREPLY to the values of option $1 matching $2; returns 1 when $1 takes no value.
_evstream_values() {
    local opt=$1 cur=$2
    case $opt in
        --db | --cert | --key | --config)
            compopt -o filenames 2>/dev/null
            COMPREPLY=($(compgen -f -- "$cur"))
            ;;
        --durability)
            COMPREPLY=($(compgen -W "normal full" -- "$cur"))
            ;;
        --log-format)
            COMPREPLY=($(compgen -W "text json" -- "$cur"))
            ;;
        --log-level)
            COMPREPLY=($(compgen -W "debug info warn error" -- "$cur"))
            ;;
        --exec)
            COMPREPLY=($(compgen -c -- "$cur"))
            ;;
        --host | --port | --ping-interval | --client-queue | --client-queue-bytes | \
            --max-message-bytes | --max-clients | --retain-age | --retain-events | --token | \
            --read-token | --allow-origin | --url | --topic | --key-field | --window | \
            --retry-timeout | --since | -n | --last | --format | --count | --clients | \
            --duration | --rate | --size | --ramp | --threads | --cameras | --where-cameras | --server-pid | --slo | --until | --speed | --to | \
            --nats | --nats-stream | --nats-replicas | --nats-dedupe-window | --publish-url)
            COMPREPLY=() # free-form value: nothing to offer
            ;;
        *)
            return 1
            ;;
    esac
    return 0
}

_evstream() {
    local cur prev cword prefix=
    cword=$COMP_CWORD
    cur=${COMP_WORDS[cword]}
    prev=
    ((cword > 0)) && prev=${COMP_WORDS[cword - 1]}
    # `--opt=value`: bash splits it at '=' (COMP_WORDBREAKS) into "--opt" "=" "value".
    if [[ $cur == "=" && $prev == -* ]]; then
        cur=
    elif [[ $prev == "=" ]] && ((cword > 1)); then
        prev=${COMP_WORDS[cword - 2]}
    elif [[ $cur == --*=* ]]; then # '=' not in COMP_WORDBREAKS: the whole word is replaced
        prev=${cur%%=*}
        prefix=$prev=
        cur=${cur#*=}
    fi

    local sub= i
    for ((i = 1; i < cword; i++)); do
        case ${COMP_WORDS[i]} in
            serve | publish | tail | replay | loadtest)
                sub=${COMP_WORDS[i]}
                break
                ;;
        esac
    done

    COMPREPLY=()
    if [[ -z $sub ]]; then
        if [[ $cur == -* ]]; then
            COMPREPLY=($(compgen -W "-h --help --version" -- "$cur"))
        else
            COMPREPLY=($(compgen -W "serve publish tail replay loadtest" -- "$cur"))
        fi
        return 0
    fi

    if _evstream_values "$prev" "$cur"; then
        [[ -n $prefix ]] && COMPREPLY=("${COMPREPLY[@]/#/$prefix}")
        return 0
    fi

    local opts
    case $sub in
        serve)
            opts="-h --help --host --port --db --threads --durability --ping-interval --client-queue
                  --client-queue-bytes --max-message-bytes --max-clients --retain-age
                  --retain-events --token --read-token --allow-origin --cert --key --log-format
                  --log-level --nats --nats-stream --nats-replicas --nats-dedupe-window --config
                  --print-config"
            ;;
        publish)
            opts="-h --help --url --topic --key-field --token --window --retry-timeout -q --quiet
                  --config --print-config"
            ;;
        tail)
            opts="-h --help --url --topic --where --since -n --last --json --format --count
                  --no-color --wide --exec --token --retry-timeout --config --print-config"
            ;;
        replay)
            opts="-h --help --db --url --since --until --topic --where --speed --data-only --to
                  --token --read-token --retry-timeout --config --print-config"
            ;;
        loadtest)
            opts="-h --help --url --clients --duration --rate --size --ramp --topic --window
                  --threads --server-pid --cameras --where-cameras --publish-url --token --read-token --slo --json --config
                  --print-config"
            ;;
    esac
    if [[ -z $cur || $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
    fi
    return 0
}

complete -F _evstream evstream
