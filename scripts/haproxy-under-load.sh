#!/usr/bin/env bash
# The PROXY protocol and HAProxy under load, measured with the load
# generator (release builds, loopback):
#
# 1. What the PROXY header costs: loadgen against one uppercase_tcp_server
#    without --proxy-protocol, then against one with --proxy-protocol
#    127.0.0.1 and loadgen --proxy-v2 (every connection begins with a v2
#    header), RUNS times each, alternating; the medians of the requests per
#    second and of the server's CPU time per request (from /proc), and the
#    difference in %. In churn mode every request is a new connection and
#    pays for a header; in tcp mode one header serves a long-lived
#    connection. On loopback, churn is capped by the kernel's reuse of
#    client ports (about 14,000 new connections a second to one address
#    on the machine measured), whatever the server: there the CPU per
#    request shows what the header costs.
# 2. A server lost behind HAProxy: deploy/haproxy.cfg as it is (ports
#    replaced) in front of two uppercase_tcp_server --proxy-protocol
#    127.0.0.1; churn load through HAProxy for DURATION s; after KILL_AFTER
#    s one server is killed (SIGKILL). Reported: requests per second, the
#    requests that failed, and how long HAProxy's health check took to
#    take the server out.
#
#   scripts/haproxy-under-load.sh
#   RUNS=5 DURATION=10 CONNECTIONS=16 MODES="churn tcp" KILL_AFTER=5 scripts/haproxy-under-load.sh
#
# Needs haproxy (Debian package `haproxy`) and python3 (to find a free
# port). Exits 0 if every run completed with no failure other than requests
# lost with the killed server, 1 otherwise. Logs and the load generator's
# reports: target/haproxy-under-load/.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-3}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-16}
MODES=${MODES:-"churn tcp"}
KILL_AFTER=${KILL_AFTER:-5}
OUT=target/haproxy-under-load
BIN=target/release/examples
mkdir -p "$OUT"
HAPROXY=$(command -v haproxy || echo /usr/sbin/haproxy)
[ -x "$HAPROXY" ] || { echo "haproxy not found: install the Debian package haproxy" >&2; exit 1; }

cargo build --release --quiet --features proxy-protocol --example uppercase_tcp_server --example loadgen

PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
}
trap cleanup EXIT
# A signal ends the script through its EXIT trap, which stops everything.
trap 'exit 1' INT TERM HUP PIPE

# start_server NAME ARGS...: starts uppercase_tcp_server on a free port
# with ARGS, logging to $OUT/NAME.log; sets SERVER_ADDR and SERVER_PID.
start_server() {
    local log="$OUT/$1.log"
    shift
    # Emptied first: the background job opens the log in its own time, and
    # the read below must not find the address of an earlier run's server.
    : > "$log"
    "$BIN/uppercase_tcp_server" --port 0 "$@" > "$log" 2>&1 &
    SERVER_PID=$!
    PIDS+=("$SERVER_PID")
    # Killed on purpose below: no "Killed" notice from the shell.
    disown "$SERVER_PID"
    for _ in $(seq 200); do
        SERVER_ADDR=$(sed -n 's/^listening on //p' "$log")
        [ -n "$SERVER_ADDR" ] && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.05
    done
    echo "server $log did not start:" >&2
    cat "$log" >&2
    exit 1
}

# field FILE NAME: a number from the load generator's one-line JSON.
field() { sed -n "s/.*\"$2\":\([0-9.]*\).*/\1/p" "$1"; }
failures() { echo $(( $(field "$1" mismatches) + $(field "$1" short) + $(field "$1" errors) + $(field "$1" timeouts) )); }
# cpu_ticks PID: the user and system CPU time a process has used, in
# clock ticks (/proc/PID/stat fields 14 and 15, after the command name).
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }
HZ=$(getconf CLK_TCK)
median() { tr ' ' '\n' | grep . | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

STATUS=0
echo "$(date -u +%Y-%m-%d), $(nproc) cores, $(uname -sr); loadgen: $CONNECTIONS clients, 64-byte messages"

# --- 1. the header's overhead -------------------------------------------
start_server plain
PLAIN=$SERVER_ADDR PLAIN_PID=$SERVER_PID
start_server proxied --proxy-protocol 127.0.0.1
PROXIED=$SERVER_ADDR PROXIED_PID=$SERVER_PID
for mode in $MODES; do
    plain_rates=() proxied_rates=() plain_cpu=() proxied_cpu=()
    for run in $(seq "$RUNS"); do
        for kind in plain proxied; do
            report="$OUT/$mode-$kind-$run.json"
            if [ "$kind" = plain ]; then
                target=$PLAIN pid=$PLAIN_PID header=()
            else
                target=$PROXIED pid=$PROXIED_PID header=(--proxy-v2)
            fi
            before=$(cpu_ticks "$pid")
            # A run with failures exits 1; they are counted below.
            "$BIN/loadgen" "$mode" --target "$target" "${header[@]}" --connections "$CONNECTIONS" \
                --duration "${DURATION}s" --warmup 0s --json > "$report" || true
            ticks=$(( $(cpu_ticks "$pid") - before ))
            if [ "$(failures "$report")" -ne 0 ]; then
                echo "$mode $kind run $run: $(failures "$report") failed requests" >&2
                STATUS=1
            fi
            rate=$(printf '%.0f' "$(field "$report" throughput)")
            # The server's CPU time per request, in microseconds.
            cpu=$(awk -v t="$ticks" -v hz="$HZ" -v n="$(field "$report" ops)" 'BEGIN { printf "%.2f", t / hz * 1e6 / n }')
            if [ "$kind" = plain ]; then
                plain_rates+=("$rate") plain_cpu+=("$cpu")
            else
                proxied_rates+=("$rate") proxied_cpu+=("$cpu")
            fi
        done
    done
    awk -v m="$mode" \
        -v a="$(echo "${plain_rates[*]}" | median)" -v b="$(echo "${proxied_rates[*]}" | median)" \
        -v ca="$(echo "${plain_cpu[*]}" | median)" -v cb="$(echo "${proxied_cpu[*]}" | median)" \
        -v ra="${plain_rates[*]}" -v rb="${proxied_rates[*]}" -v rca="${plain_cpu[*]}" -v rcb="${proxied_cpu[*]}" \
        'BEGIN {
            printf "%-5s requests/s       without header %7.0f (runs: %s), with a v2 header %7.0f (runs: %s): %+.1f%%\n", m, a, ra, b, rb, (b - a) / a * 100
            printf "%-5s server CPU/request without header %5.2f us (runs: %s), with a v2 header %5.2f us (runs: %s): %+.1f%%\n", m, ca, rca, cb, rcb, (cb - ca) / ca * 100
        }'
done
cleanup
PIDS=()

# --- 2. a server killed behind HAProxy ----------------------------------
start_server s1 --proxy-protocol 127.0.0.1
S1=$SERVER_ADDR
S1_PID=$SERVER_PID
start_server s2 --proxy-protocol 127.0.0.1
S2=$SERVER_ADDR
FRONT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
sed -e "s/^\( *bind \)127.0.0.1:9000/\1127.0.0.1:$FRONT/" \
    -e "s/^\( *server s1 \)127.0.0.1:9001/\1$S1/" \
    -e "s/^\( *server s2 \)127.0.0.1:9002/\1$S2/" deploy/haproxy.cfg > "$OUT/haproxy.cfg"
"$HAPROXY" -c -q -f "$OUT/haproxy.cfg"
"$HAPROXY" -db -f "$OUT/haproxy.cfg" > "$OUT/haproxy.log" 2>&1 &
PIDS+=($!)
# Serving once a request goes through.
serving=0
for _ in $(seq 200); do
    if "$BIN/loadgen" churn --target "127.0.0.1:$FRONT" --connections 1 --duration 100ms --warmup 0s \
        --json > "$OUT/probe.json" 2>/dev/null && [ "$(field "$OUT/probe.json" ops)" != 0 ]; then
        serving=1
        break
    fi
    sleep 0.05
done
if [ "$serving" != 1 ]; then
    echo "HAProxy on 127.0.0.1:$FRONT served no request; its log:" >&2
    cat "$OUT/haproxy.log" >&2
    exit 1
fi
echo "HAProxy on 127.0.0.1:$FRONT (deploy/haproxy.cfg) in front of $S1 and $S2"

"$BIN/loadgen" churn --target "127.0.0.1:$FRONT" --connections "$CONNECTIONS" --duration "${DURATION}s" \
    --warmup 0s --timeout 5s --json > "$OUT/through-haproxy.json" &
LOADGEN=$!
PIDS+=("$LOADGEN")
sleep "$KILL_AFTER"
kill -KILL "$S1_PID"
KILLED=$(date +%s%N)
OUT_AFTER=
for _ in $(seq 1000); do
    if grep -q "uppercase_servers/s1 is DOWN" "$OUT/haproxy.log"; then
        OUT_AFTER=$(( ($(date +%s%N) - KILLED) / 1000000 ))
        break
    fi
    sleep 0.01
done
# The requests in flight on the killed server fail, so loadgen exits 1:
# how many failed is checked below.
wait "$LOADGEN" || true
REPORT="$OUT/through-haproxy.json"
echo "through HAProxy: $(field "$REPORT" ops) requests at $(printf '%.0f' "$(field "$REPORT" throughput)")/s, p99 $(sed -n 's/.*"p99":\([0-9]*\).*/\1/p' "$REPORT") us, max $(sed -n 's/.*"max":\([0-9]*\).*/\1/p' "$REPORT") us"
echo "killed s1 after ${KILL_AFTER}s; HAProxy took it out after ${OUT_AFTER:-(never)} ms"
echo "failed: $(failures "$REPORT") (mismatches $(field "$REPORT" mismatches), short $(field "$REPORT" short), errors $(field "$REPORT" errors), timeouts $(field "$REPORT" timeouts))"
grep -q '"last_error":null' "$REPORT" || sed -n 's/.*"last_error":\("[^"]*"\).*/last failure: \1/p' "$REPORT"
[ -n "$OUT_AFTER" ] || STATUS=1
# Only the requests in flight on the killed server may fail: at most one
# per client.
[ "$(failures "$REPORT")" -le "$CONNECTIONS" ] || STATUS=1
exit "$STATUS"
