#!/usr/bin/env bash
# Restarts under load: starts examples/uppercase_tcp_server.rs, drives churn
# load through it with the load generator (connect, one round trip,
# close), and restarts the server RESTARTS times meanwhile (SIGHUP: a new
# process takes the listening socket over, the old one drains and exits),
# waiting for each new process to be ready before the next restart. Then
# it reports the round trips and every failure the load generator saw.
#
#   scripts/restart-under-load.sh
#   RESTARTS=10 DURATION=12 CONNECTIONS=16 scripts/restart-under-load.sh
#
# Exits 0 if every restart happened and no round trip failed, 1
# otherwise. Logs and the load generator's report:
# target/restart-under-load/.
set -euo pipefail
cd "$(dirname "$0")/.."

RESTARTS=${RESTARTS:-10}
DURATION=${DURATION:-12}
CONNECTIONS=${CONNECTIONS:-16}
OUT=target/restart-under-load
BIN=target/release/examples
mkdir -p "$OUT"
LOG="$OUT/server.log"

cargo build --release --quiet --features restart --example uppercase_tcp_server --example loadgen

"$BIN/uppercase_tcp_server" --port 0 --grace 2s > "$LOG" 2>&1 &
LOADGEN=
cleanup() {
    if [ -n "$LOADGEN" ]; then
        kill "$LOADGEN" 2>/dev/null || true
    fi
    # Every generation that has not said it exited (normally only the
    # newest one is left).
    local pid
    for pid in $(sed -n 's/^ready pid //p' "$LOG"); do
        grep -q "^exited pid $pid " "$LOG" || kill "$pid" 2>/dev/null || true
    done
}
trap cleanup EXIT
# A signal ends the script through its EXIT trap, which stops the servers.
trap 'exit 1' INT TERM HUP PIPE

# wait_lines PATTERN COUNT: waits (10 s at most) until the log has COUNT
# lines matching PATTERN.
wait_lines() {
    for _ in $(seq 400); do
        [ "$(grep -c "$1" "$LOG")" -ge "$2" ] && return 0
        sleep 0.025
    done
    echo "fewer than $2 lines like '$1' after 10 s:" >&2
    cat "$LOG" >&2
    exit 1
}

# wait_ready COUNT: waits until COUNT processes have said "ready pid".
wait_ready() {
    wait_lines '^ready pid ' "$1"
}

wait_ready 1
ADDR=$(sed -n 's/^listening on //p' "$LOG" | head -1)
echo "uppercase_tcp_server on $ADDR; churn load: $CONNECTIONS clients for $DURATION s, $RESTARTS restarts"

"$BIN/loadgen" churn --target "$ADDR" --connections "$CONNECTIONS" --duration "${DURATION}s" \
    --warmup 0s --json > "$OUT/loadgen.json" &
LOADGEN=$!

# Restarts spread over the run, after a second of load.
PAUSE=$(awk -v d="$DURATION" -v n="$RESTARTS" 'BEGIN { printf "%.3f", (d - 2) / n }')
sleep 1
for n in $(seq "$RESTARTS"); do
    current=$(sed -n 's/^ready pid //p' "$LOG" | tail -1)
    # The previous generation must have exited: a restart is refused
    # while it drains.
    wait_lines '^exited pid ' $((n - 1))
    kill -HUP "$current"
    wait_ready $((n + 1))
    sleep "$PAUSE"
done
# Failed requests make loadgen exit 1; they are counted and judged below.
wait "$LOADGEN" || true

PIDS=$(sed -n 's/^ready pid //p' "$LOG" | sort -u | wc -l)
field() { sed -n "s/.*\"$1\":\([0-9.]*\).*/\1/p" "$OUT/loadgen.json"; }
FAILURES=$(( $(field mismatches) + $(field short) + $(field errors) + $(field timeouts) ))
echo "processes: $PIDS (restarts: $((PIDS - 1)) of $RESTARTS)"
echo "round trips: $(field ops) at $(printf '%.0f' "$(field throughput)")/s; p99 $(sed -n 's/.*"p99":\([0-9]*\).*/\1/p' "$OUT/loadgen.json") us, max $(sed -n 's/.*"max":\([0-9]*\).*/\1/p' "$OUT/loadgen.json") us"
echo "failed: $FAILURES (mismatches $(field mismatches), short $(field short), errors $(field errors), timeouts $(field timeouts))"
grep -q '"last_error":null' "$OUT/loadgen.json" || sed -n 's/.*"last_error":\("[^"]*"\).*/last failure: \1/p' "$OUT/loadgen.json"
[ "$PIDS" -eq $((RESTARTS + 1)) ] && [ "$FAILURES" -eq 0 ]
