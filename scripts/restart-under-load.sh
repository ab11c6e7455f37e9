#!/usr/bin/env bash
# Restarts under load: starts examples/uppercase_tcp_server.rs, drives load
# through it with the load generator, and restarts the server RESTARTS
# times meanwhile (SIGHUP: a new process takes the listening socket over,
# the old one drains and exits), waiting for each new process to be ready
# before the next restart. Then it reports the round trips and every
# failure the load generator saw. Two scenarios:
#
#   churn      CONNECTIONS (16) clients connect, make one round trip and
#              close, again and again; threading mode.
#   keepalive  KA_CONNECTIONS (1,000) connections, each sending a request
#              every KA_INTERVAL_MS (10) ms and checking every reply, in
#              both modes (threading, parked), directly and behind a real
#              HAProxy (send-proxy-v2). A parked server moves its
#              connections to the new process between two requests; a
#              threading one serves them to their end in the old process.
#              Every old process must be gone once its connections are.
#
#   scripts/restart-under-load.sh                   # both scenarios
#   SCENARIO=keepalive scripts/restart-under-load.sh
#   RESTARTS=10 DURATION=12 CONNECTIONS=16 SCENARIO=churn scripts/restart-under-load.sh
#   KA_MODES=parked KA_VIA=plain SCENARIO=keepalive scripts/restart-under-load.sh
#
# A connection the server cuts fails the request on it (the load generator
# opens a new connection only after a request failed), so "0 failed" is
# also "0 cut". A restart's new process logs how long the connections it
# took over were in transit; the keep-alive runs report those figures.
#
# Exits 0 if every restart happened, no request failed and every old
# process exited, 1 otherwise. Logs and the load generator's reports:
# target/restart-under-load/. Needs haproxy for KA_VIA=haproxy (.ci/run
# installs it).
set -euo pipefail
cd "$(dirname "$0")/.."

SCENARIO=${SCENARIO:-both}
RESTARTS=${RESTARTS:-10}
DURATION=${DURATION:-12}
CONNECTIONS=${CONNECTIONS:-16}
KA_CONNECTIONS=${KA_CONNECTIONS:-1000}
KA_INTERVAL_MS=${KA_INTERVAL_MS:-10}
KA_DURATION=${KA_DURATION:-15}
KA_MODES=${KA_MODES:-threading parked}
KA_VIA=${KA_VIA:-plain haproxy}
OUT=target/restart-under-load
BIN=target/release/examples
mkdir -p "$OUT"

cargo build --release --quiet --features restart,proxy-protocol --example uppercase_tcp_server --example loadgen

LOG=
LOADGEN=
HAPROXY=
cleanup() {
    if [ -n "$LOADGEN" ]; then
        kill "$LOADGEN" 2>/dev/null || true
    fi
    if [ -n "$HAPROXY" ]; then
        kill "$HAPROXY" 2>/dev/null || true
    fi
    stop_servers
}
# Every generation that has not said it exited.
stop_servers() {
    [ -n "$LOG" ] || return 0
    local pid
    for pid in $(sed -n 's/^ready pid //p' "$LOG"); do
        grep -q "^exited pid $pid " "$LOG" || kill "$pid" 2>/dev/null || true
    done
}
trap cleanup EXIT
# A signal ends the script through its EXIT trap, which stops the servers.
trap 'exit 1' INT TERM HUP PIPE

# wait_lines PATTERN COUNT [SECONDS]: waits (10 s unless told) until the
# log has COUNT lines matching PATTERN.
wait_lines() {
    local tries=$(( ${3:-10} * 40 ))
    for _ in $(seq "$tries"); do
        [ "$(grep -c "$1" "$LOG")" -ge "$2" ] && return 0
        sleep 0.025
    done
    echo "fewer than $2 lines like '$1' after ${3:-10} s:" >&2
    tail -20 "$LOG" >&2
    exit 1
}

# wait_ready COUNT: waits until COUNT processes have said "ready pid".
wait_ready() {
    wait_lines '^ready pid ' "$1"
}

# start_server NAME ARGS...: starts the server, logging to $OUT/NAME.log.
start_server() {
    LOG="$OUT/$1.log"
    shift
    # Emptied first: the last run's lines must not be read as this one's.
    : > "$LOG"
    "$BIN/uppercase_tcp_server" --port 0 --grace 2s "$@" > "$LOG" 2>&1 &
    wait_ready 1
    ADDR=$(sed -n 's/^listening on //p' "$LOG" | head -1)
}

# restarts COUNT PAUSE: restarts the newest generation COUNT times, PAUSE
# seconds apart, each once the one before is ready.
restarts() {
    local n current
    for n in $(seq "$1"); do
        current=$(sed -n 's/^ready pid //p' "$LOG" | tail -1)
        kill -HUP "$current"
        wait_ready $((n + 1))
        sleep "$2"
    done
}

# field REPORT NAME: a number from a loadgen JSON report.
field() { sed -n "s/.*\"$2\":\([0-9.]*\).*/\1/p" "$1"; }

# judge NAME REPORT: prints the run's figures; false if a restart is
# missing, a request failed or an old process is left.
judge() {
    local name=$1 report=$2
    local pids exited failures
    pids=$(sed -n 's/^ready pid //p' "$LOG" | sort -u | wc -l)
    failures=$(( $(field "$report" mismatches) + $(field "$report" short) + $(field "$report" errors) + $(field "$report" timeouts) ))
    # Every generation but the newest exits once its connections are gone.
    exited=$(grep -c '^exited pid ' "$LOG" || true)
    echo "$name: processes $pids (restarts $((pids - 1)) of $RESTARTS), old ones exited $exited of $((pids - 1))"
    echo "$name: round trips $(field "$report" ops) at $(printf '%.0f' "$(field "$report" throughput)")/s; p50 $(sed -n 's/.*"p50":\([0-9]*\).*/\1/p' "$report") us, p99 $(sed -n 's/.*"p99":\([0-9]*\).*/\1/p' "$report") us, max $(sed -n 's/.*"max":\([0-9]*\).*/\1/p' "$report") us"
    echo "$name: failed $failures (mismatches $(field "$report" mismatches), short $(field "$report" short), errors $(field "$report" errors), timeouts $(field "$report" timeouts))"
    grep -q '"last_error":null' "$report" || sed -n 's/.*"last_error":\("[^"]*"\).*/  last failure: \1/p' "$report"
    [ "$pids" -eq $((RESTARTS + 1)) ] && [ "$failures" -eq 0 ] && [ "$exited" -eq $((pids - 1)) ]
}

churn() {
    start_server churn
    echo "churn: uppercase_tcp_server on $ADDR; $CONNECTIONS clients for $DURATION s, $RESTARTS restarts"
    "$BIN/loadgen" churn --target "$ADDR" --connections "$CONNECTIONS" --duration "${DURATION}s" \
        --warmup 0s --json > "$OUT/churn.json" &
    LOADGEN=$!
    sleep 1
    # Restarts spread over the run, after a second of load.
    restarts "$RESTARTS" "$(awk -v d="$DURATION" -v n="$RESTARTS" 'BEGIN { printf "%.3f", (d - 2) / n }')"
    # Failed requests make loadgen exit 1; they are counted and judged below.
    wait "$LOADGEN" || true
    LOADGEN=
    wait_lines '^exited pid ' "$RESTARTS"
    local verdict=0
    judge churn "$OUT/churn.json" || verdict=1
    stop_servers
    return $verdict
}

# haproxy_in_front BACKEND: starts HAProxy forwarding a port of its own to
# BACKEND with a PROXY v2 header; sets FRONT.
haproxy_in_front() {
    local haproxy port
    haproxy=$(PATH="$PATH:/usr/sbin" command -v haproxy) || {
        echo "haproxy is not installed (apt-get install haproxy, or run .ci/run)" >&2
        exit 1
    }
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    cat > "$OUT/haproxy.cfg" <<EOF
global
    maxconn 8000
defaults
    mode tcp
    timeout connect 5s
    timeout client 60s
    timeout server 60s
frontend front
    bind 127.0.0.1:$port
    default_backend servers
backend servers
    server echo $BACKEND send-proxy-v2
EOF
    "$haproxy" -db -f "$OUT/haproxy.cfg" > "$OUT/haproxy.log" 2>&1 &
    HAPROXY=$!
    FRONT=127.0.0.1:$port
    for _ in $(seq 200); do
        python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 1).close()" 2>/dev/null && return 0
        sleep 0.025
    done
    echo "HAProxy did not start:" >&2
    cat "$OUT/haproxy.log" >&2
    exit 1
}

# keepalive MODE VIA: the keep-alive scenario in MODE (threading, parked),
# directly or behind HAProxy.
keepalive() {
    local mode=$1 via=$2 name="keepalive-$1-$2" target
    local args=(--workers $((KA_CONNECTIONS + 64)))
    [ "$mode" = parked ] && args=(--parked)
    [ "$via" = haproxy ] && args+=(--proxy-protocol 127.0.0.1)
    start_server "$name" "${args[@]}"
    target=$ADDR
    if [ "$via" = haproxy ]; then
        BACKEND=$ADDR haproxy_in_front
        target=$FRONT
    fi
    local rate=$(( KA_CONNECTIONS * 1000 / KA_INTERVAL_MS ))
    echo "$name: $KA_CONNECTIONS connections to $target, one request every $KA_INTERVAL_MS ms each ($rate/s), $KA_DURATION s, $RESTARTS restarts"
    "$BIN/loadgen" tcp --target "$target" --connections "$KA_CONNECTIONS" --driver epoll \
        --rate "$rate" --duration "${KA_DURATION}s" --warmup 0s --timeout 5s --json > "$OUT/$name.json" &
    LOADGEN=$!
    sleep 2
    restarts "$RESTARTS" "$(awk -v d="$KA_DURATION" -v n="$RESTARTS" 'BEGIN { printf "%.3f", (d - 4) / n }')"
    wait "$LOADGEN" || true
    LOADGEN=
    if [ -n "$HAPROXY" ]; then
        kill "$HAPROXY" 2>/dev/null || true
        wait "$HAPROXY" 2>/dev/null || true
        HAPROXY=
    fi
    # The clients are gone: every old process exits now, at the latest.
    wait_lines '^exited pid ' "$RESTARTS" 20
    local verdict=0
    judge "$name" "$OUT/$name.json" || verdict=1
    # What the new processes said about the connections they took over.
    local moved
    moved=$(grep -o 'moved [0-9]* connection(s) here.*' "$LOG" || true)
    if [ -n "$moved" ]; then
        echo "$moved" | awk -v name="$name" '
            { n += $2; if (match($0, /p50 [0-9]+/)) { p50 = substr($0, RSTART + 4, RLENGTH - 4) + 0; if (p50 > max50) max50 = p50 }
              if (match($0, /p99 [0-9]+/)) { p99 = substr($0, RSTART + 4, RLENGTH - 4) + 0; if (p99 > max99) max99 = p99 }
              if (match($0, /max [0-9]+/)) { m = substr($0, RSTART + 4, RLENGTH - 4) + 0; if (m > maxmax) maxmax = m } }
            END { printf "%s: %d connection moves; in transit, the largest over the generations: p50 %d us, p99 %d us, max %d us\n", name, n, max50, max99, maxmax }'
    else
        echo "$name: no connection moved (served to their end by the process that had them)"
    fi
    stop_servers
    return $verdict
}

VERDICT=0
case "$SCENARIO" in
churn | both) churn || VERDICT=1 ;;
esac
case "$SCENARIO" in
keepalive | both)
    for mode in $KA_MODES; do
        for via in $KA_VIA; do
            keepalive "$mode" "$via" || VERDICT=1
        done
    done
    ;;
esac
exit $VERDICT
