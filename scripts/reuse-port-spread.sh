#!/usr/bin/env bash
# Several processes on one port: starts PROCESSES crate servers
# (examples/bench_server.rs, ThreadingTcpServer uppercase echo) with
# SO_REUSEPORT on one port of 127.0.0.1, drives churn load through it with
# the load generator (connect, one round trip, close: every connection is
# a new 4-tuple, so the kernel's SO_REUSEPORT hash spreads them), stops
# the servers and reports each one's share of the accepted connections,
# and whether each is within +-TOLERANCE % of the mean.
#
#   scripts/reuse-port-spread.sh
#   PROCESSES=4 DURATION=10 CONNECTIONS=16 TOLERANCE=15 scripts/reuse-port-spread.sh
#
# Exits 0 if every share is within the tolerance and no request failed, 1
# otherwise. Logs and the load generator's report: target/reuse-port-spread/.
set -euo pipefail
cd "$(dirname "$0")/.."

PROCESSES=${PROCESSES:-4}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-16}
TOLERANCE=${TOLERANCE:-15}
OUT=target/reuse-port-spread
BIN=target/release/examples
mkdir -p "$OUT"

cargo build --release --quiet --example bench_server --example loadgen

PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
}
trap cleanup EXIT
# A signal ends the script through its EXIT trap, which stops the servers.
trap 'exit 1' INT TERM HUP PIPE

# start_server N PORT: starts server N on PORT (0: a free one) and sets
# SERVER_ADDR to the address it listens on.
start_server() {
    local log="$OUT/server-$1.log"
    # Emptied first: the background job opens the log in its own time, and
    # the read below must not find the address of an earlier run's server.
    : > "$log"
    "$BIN/bench_server" --kind crate-tcp --reuse-port --port "$2" > "$log" 2>&1 &
    PIDS+=($!)
    local pid=$!
    for _ in $(seq 200); do
        local addr
        addr=$(sed -n 's/^listening on //p' "$log")
        if [ -n "$addr" ]; then
            SERVER_ADDR=$addr
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    echo "server $1 did not start:" >&2
    cat "$log" >&2
    exit 1
}

start_server 1 0
ADDR=$SERVER_ADDR
PORT=${ADDR##*:}
for n in $(seq 2 "$PROCESSES"); do
    start_server "$n" "$PORT"
done
echo "$PROCESSES servers with SO_REUSEPORT on $ADDR (pids ${PIDS[*]})"

echo "churn load: $CONNECTIONS clients for $DURATION s"
# Failed requests make loadgen exit 1; they are counted below.
"$BIN/loadgen" churn --target "$ADDR" --connections "$CONNECTIONS" --duration "${DURATION}s" \
    --warmup 0s --json > "$OUT/loadgen.json" || true

for pid in "${PIDS[@]}"; do
    kill -TERM "$pid"
done
for pid in "${PIDS[@]}"; do
    wait "$pid" || { echo "a server exited with an error" >&2; exit 1; }
done
PIDS=()

COUNTS=()
for n in $(seq "$PROCESSES"); do
    count=$(sed -n 's/^accepted //p' "$OUT/server-$n.log")
    [ -n "$count" ] || { echo "server $n did not report its count" >&2; exit 1; }
    COUNTS+=("$count")
done

# The load generator's counts, from its one-line JSON report.
field() { sed -n "s/.*\"$1\":\([0-9.]*\).*/\1/p" "$OUT/loadgen.json"; }
FAILURES=$(( $(field mismatches) + $(field short) + $(field errors) + $(field timeouts) ))
echo "loadgen: $(field ops) round trips, $(printf '%.0f' "$(field throughput)") /s, $FAILURES failed"

echo "${COUNTS[*]}" | awk -v tolerance="$TOLERANCE" -v failures="$FAILURES" '{
    total = 0
    for (i = 1; i <= NF; i++) total += $i
    mean = total / NF
    worst = 0
    ok = 1
    printf "%-8s %10s %8s %10s\n", "process", "accepted", "share", "vs mean"
    for (i = 1; i <= NF; i++) {
        deviation = ($i - mean) / mean * 100
        if (deviation < 0 ? -deviation > tolerance : deviation > tolerance) ok = 0
        if ((deviation < 0 ? -deviation : deviation) > worst) worst = (deviation < 0 ? -deviation : deviation)
        printf "%-8d %10d %7.2f%% %+9.2f%%\n", i, $i, $i / total * 100, deviation
    }
    printf "total %d, mean %.1f; largest deviation %.2f%%: ", total, mean, worst
    if (ok) printf "every process within +-%d%% of the mean\n", tolerance
    else printf "NOT every process within +-%d%% of the mean\n", tolerance
    if (!ok || failures > 0) exit 1
}'
