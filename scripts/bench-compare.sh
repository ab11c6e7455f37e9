#!/usr/bin/env bash
# Compares the crate's servers with plain standard-library ones, in one
# run, and writes a markdown table (target/bench-compare/table.md).
#
#   scripts/bench-compare.sh                 # ~6 minutes on 2 cores
#   DURATION=10 ROUNDS=5 scripts/bench-compare.sh
#
# Each server runs in a process of its own (examples/bench_server.rs) and
# is driven by the load generator (examples/loadgen) over loopback. The
# crate's server and its plain counterpart alternate, ROUNDS times, in
# swapped order every other round; the table shows medians, and the ratio
# is the median of the per-round ratios, because this machine's noise is
# larger than some of the differences measured.
#
# Scenarios and targets:
#   TCP ping-pong, 64 B, 1/64/256 connections   >= 0.95x the plain thread-per-connection server
#   churn (connect, round trip, close), 16       >= 1.2x the plain thread-per-connection server
#   churn at 8,000/s, open loop                  (no target: latency at equal load)
#   UDP ping-pong, 64 B, 1/16 clients            >= 0.9x / > 1x the plain recv_from loop
#   10,000 idle connections, one round trip each all answered, server RSS < 300 MB
#   shutdown() with 1,000 idle clients           < 50 ms with grace 0; < grace + 50 ms otherwise
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-4}
WARMUP=${WARMUP:-1}
ROUNDS=${ROUNDS:-3}
IDLE=${IDLE:-10000}
IDLE_STACK_KIB=${IDLE_STACK_KIB:-64}
GRACE_MS=${GRACE_MS:-500}
OUT=target/bench-compare
BIN=target/release/examples
mkdir -p "$OUT/logs"
RESULTS="$OUT/results.jsonl"
: > "$RESULTS"

command -v python3 >/dev/null || { echo "python3 is needed to write the table" >&2; exit 1; }
cargo build --release --quiet --example bench_server --example loadgen
# Idle connections need a descriptor at each end: raise the soft limit to
# the hard one, here in the script, never in the library.
ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" -lt $((IDLE + 512)) ]; then
    echo "the descriptor limit ($(ulimit -n)) is too low for $IDLE idle connections" >&2
    exit 1
fi

SERVER_PID=
cleanup() { [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null; true; }
trap cleanup EXIT

# start_server LOG KIND [ARGS...]: starts bench_server, sets SERVER_PID and
# SERVER_ADDR from the first line it prints.
start_server() {
    local log=$1
    shift
    "$BIN/bench_server" --kind "$@" > "$log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 200); do
        SERVER_ADDR=$(sed -n 's/^listening on //p' "$log")
        [ -n "$SERVER_ADDR" ] && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.05
    done
    echo "bench_server $* did not start:" >&2
    cat "$log" >&2
    exit 1
}

stop_server() {
    kill -TERM "$SERVER_PID"
    wait "$SERVER_PID" || true
    SERVER_PID=
}

# The kernel's count of connections dropped because an accept queue was
# full: a run that raises it hit the listen backlog, not the server.
listen_overflows() {
    awk '/^TcpExt:/ { if (!seen) { split($0, names); seen = 1; next } split($0, values);
        for (i in names) if (names[i] == "ListenOverflows") print values[i] }' /proc/net/netstat
}

# measure SCENARIO KIND MODE CONNECTIONS ROUND [LOADGEN ARGS...]: one
# loadgen run against a fresh server, appended to the results. Each run's
# server log is kept under $OUT/logs.
measure() {
    local scenario=$1 kind=$2 mode=$3 connections=$4 round=$5
    shift 5
    local log
    log="$OUT/logs/$(echo "$scenario" | tr -c 'a-zA-Z0-9\n' '_')-$kind-$round.log"
    start_server "$log" "$kind"
    local before result
    before=$(listen_overflows)
    result=$("$BIN/loadgen" "$mode" --target "$SERVER_ADDR" --connections "$connections" \
        --duration "${DURATION}s" --warmup "${WARMUP}s" --json "$@")
    stop_server
    printf '{"scenario":"%s","server":"%s","round":%d,"listen_overflows":%d,"result":%s}\n' \
        "$scenario" "$kind" "$round" $(($(listen_overflows) - before)) "$result" >> "$RESULTS"
    echo "  $scenario $kind round $round: $(python3 -c 'import json,sys; d=json.load(sys.stdin); print(round(d["throughput"]), "ops/s, p99", d["latency_us"]["p99"], "us, failures", d["mismatches"]+d["errors"]+d["timeouts"]+d["lost"])' <<< "$result")"
}

# pair SCENARIO MODE CONNECTIONS CRATE PLAIN [LOADGEN ARGS...]: the two
# servers in turn, the first one alternating.
pair() {
    local scenario=$1 mode=$2 connections=$3 crate=$4 plain=$5
    shift 5
    for round in $(seq "$ROUNDS"); do
        if [ $((round % 2)) = 1 ]; then
            measure "$scenario" "$crate" "$mode" "$connections" "$round" "$@"
            measure "$scenario" "$plain" "$mode" "$connections" "$round" "$@"
        else
            measure "$scenario" "$plain" "$mode" "$connections" "$round" "$@"
            measure "$scenario" "$crate" "$mode" "$connections" "$round" "$@"
        fi
    done
}

echo "throughput and latency ($ROUNDS rounds of ${DURATION} s after ${WARMUP} s warm-up)"
pair "tcp 64 B x1" tcp 1 crate-tcp plain-tcp
pair "tcp 64 B x64" tcp 64 crate-tcp plain-tcp
pair "tcp 64 B x256" tcp 256 crate-tcp plain-tcp
pair "churn x16" churn 16 crate-tcp plain-tcp
pair "churn x16 at 8000/s" churn 16 crate-tcp plain-tcp --rate 8000
pair "udp 64 B x1" udp 1 crate-udp plain-udp
pair "udp 64 B x16" udp 16 crate-udp plain-udp

echo "$IDLE idle connections (worker stacks of $IDLE_STACK_KIB KiB)"
start_server "$OUT/idle-server.log" crate-tcp --stack "${IDLE_STACK_KIB}KiB"
idle=$("$BIN/loadgen" idle --target "$SERVER_ADDR" --connections "$IDLE" --hold --duration 3s --timeout 20s --json)
stop_server
rss=$(sed -n 's/^peak rss \([0-9]*\) KiB/\1/p' "$OUT/idle-server.log")
printf '{"scenario":"idle","server":"crate-tcp","peak_rss_kib":%s,"stack_kib":%s,"result":%s}\n' \
    "$rss" "$IDLE_STACK_KIB" "$idle" >> "$RESULTS"

# shutdown_run GRACE_MS: 1,000 idle clients, then SIGTERM; the server
# times its own shutdown() call.
shutdown_run() {
    local grace=$1
    start_server "$OUT/shutdown-server.log" crate-tcp --grace "${grace}ms"
    "$BIN/loadgen" idle --target "$SERVER_ADDR" --connections 1000 --hold --duration 60s --json \
        > "$OUT/shutdown-loadgen.json" 2> "$OUT/shutdown-loadgen.err" &
    local loadgen=$!
    for _ in $(seq 600); do
        grep -q '^holding' "$OUT/shutdown-loadgen.err" && break
        sleep 0.05
    done
    grep -q '^holding 1000' "$OUT/shutdown-loadgen.err" || { echo "the clients never all connected" >&2; exit 1; }
    stop_server
    wait "$loadgen"
    local took
    took=$(sed -n 's/^shutdown took \([0-9]*\) us/\1/p' "$OUT/shutdown-server.log")
    printf '{"scenario":"shutdown","grace_ms":%s,"shutdown_us":%s,"result":%s}\n' \
        "$grace" "$took" "$(cat "$OUT/shutdown-loadgen.json")" >> "$RESULTS"
    echo "  shutdown with grace ${grace} ms: ${took} us"
}
echo "shutdown with 1,000 idle clients"
shutdown_run 0
shutdown_run "$GRACE_MS"

python3 - "$RESULTS" "$DURATION" "$WARMUP" "$ROUNDS" > "$OUT/table.md" <<'PYTHON'
import json, os, platform, statistics, subprocess, sys, datetime

results_path, duration, warmup, rounds = sys.argv[1:]
rows = [json.loads(line) for line in open(results_path)]

def cpu():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"

def ms(us):
    return "%.2f ms" % (us / 1000.0) if us >= 1000 else "%d µs" % us

print("Measured %s on %d cores (%s), Linux %s, with `scripts/bench-compare.sh`"
      % (datetime.date.today().isoformat(), os.cpu_count(), cpu(), platform.release()))
print("(%s rounds of %s s after %s s warm-up; medians; ratio = median of per-round ratios).\n"
      % (rounds, duration, warmup))
print("| scenario | server | throughput | p50 | p99 | vs plain | target |")
print("|---|---|---|---|---|---|---|")
targets = {
    "tcp 64 B x1": 0.95, "tcp 64 B x64": 0.95, "tcp 64 B x256": 0.95,
    "churn x16": 1.2, "churn x16 at 8000/s": None, "udp 64 B x1": 0.9, "udp 64 B x16": 1.0,
}
overflows = 0
failures = 0
for scenario, target in targets.items():
    runs = [r for r in rows if r.get("scenario") == scenario]
    servers = sorted({r["server"] for r in runs}, key=lambda s: not s.startswith("crate"))
    crate, plain = servers
    by_round = {}
    for r in runs:
        by_round.setdefault(r["round"], {})[r["server"]] = r["result"]
        res = r["result"]
        failures += res["mismatches"] + res["errors"] + res["timeouts"] + res["lost"]
        overflows += r.get("listen_overflows", 0)
    ratios = [rs[crate]["throughput"] / rs[plain]["throughput"] for rs in by_round.values()]
    ratio = statistics.median(ratios)
    for server in (crate, plain):
        res = [r["result"] for r in runs if r["server"] == server]
        tput = statistics.median(x["throughput"] for x in res)
        p50 = statistics.median(x["latency_us"]["p50"] for x in res)
        p99 = statistics.median(x["latency_us"]["p99"] for x in res)
        if server == crate and target is None:
            print("| %s | %s | %.0f/s | %s | %s | %.2fx | (latency at equal load) |"
                  % (scenario, server, tput, ms(p50), ms(p99), ratio))
        elif server == crate:
            verdict = "%.2fx" % ratio
            goal = (">= %.2fx" % target) if target != 1.0 else "> 1x"
            met = ratio >= target if target != 1.0 else ratio > 1.0
            print("| %s | %s | %.0f/s | %s | %s | **%s** | %s %s |"
                  % (scenario, server, tput, ms(p50), ms(p99), verdict, goal, "met" if met else "MISSED"))
        else:
            print("| %s | %s | %.0f/s | %s | %s | 1.00x | |" % (scenario, server, tput, ms(p50), ms(p99)))

idle = next(r for r in rows if r.get("scenario") == "idle")
res = idle["result"]
rss_mb = idle["peak_rss_kib"] / 1024.0
print("\n| idle connections | connected | answered | failures | server peak RSS | target |")
print("|---|---|---|---|---|---|")
print("| %d (worker stacks %d KiB) | %d | %d | %d | %.0f MB | all answered, < 300 MB: %s |"
      % (res["connections"], idle["stack_kib"], res["connected"], res["ops"],
         res["mismatches"] + res["errors"] + res["timeouts"],
         rss_mb, "met" if res["ops"] == res["connections"] and rss_mb < 300 else "MISSED"))

print("\n| shutdown() with 1,000 idle clients | took | clients closed | target |")
print("|---|---|---|---|")
for r in (r for r in rows if r.get("scenario") == "shutdown"):
    took_ms = r["shutdown_us"] / 1000.0
    limit = r["grace_ms"] + 50
    print("| grace %d ms | %.1f ms | %d | < %d ms: %s |"
          % (r["grace_ms"], took_ms, r["result"]["closed_by_server"], limit,
             "met" if took_ms < limit else "MISSED"))
print("\nClient-side failures across the throughput runs (mismatches, errors, timeouts, losses): %d;"
      " connections the kernel dropped for a full accept queue meanwhile: %d" % (failures, overflows))
PYTHON
echo
cat "$OUT/table.md"
