#!/usr/bin/env bash
# Compares the crate's servers with each other and with baselines, in one
# run, and writes a markdown report (target/bench-compare/table.md).
#
#   scripts/bench-compare.sh                 # about 30 minutes on 2 cores
#   DURATION=10 ROUNDS=5 scripts/bench-compare.sh
#   ONLY=parked scripts/bench-compare.sh     # one group: basic, bulk, tls, parked (about 9 minutes), limits, proto
#   UPDATE_REPORT=1 scripts/bench-compare.sh # and write the tables into PERFORMANCE.md
#   ONLY="parked tls" scripts/bench-compare.sh  # several groups
#   ONLY=versions BASELINE_REV=06e925e scripts/bench-compare.sh   # against an older build
#
# Each server runs in a process of its own (examples/bench_server.rs) and
# is driven by the load generator (examples/loadgen) over loopback. The
# servers of a comparison (a subject and one or more baselines) take
# turns, ROUNDS times, the order rotated every round; the report shows
# medians, and each ratio (the subject's throughput over a baseline's) is
# the median of the per-round ratios, because this machine's noise is
# larger than some of the differences measured. The server's CPU time per
# request (user + system, from /proc) is reported too: it is steadier
# than throughput when client and server share the cores.
#
# Groups and targets:
#   basic   the per-connection ThreadingTcpServer/ThreadingUdpServer
#           against plain std servers (benches/fixtures/plain.rs): ping-pong
#           >= 0.95x, churn >= 1.2x, UDP >= 0.9x / > 1x; 10,000 idle
#           connections all answered, server RSS < 150 MB; shutdown() with
#           1,000 idle clients < 50 ms (grace 0)
#   bulk    the echo with 16 KiB, 64 KiB and 1 MiB messages, 1 and 16
#           clients, against a plain server written for bulk data
#           (plain-tcp-bulk: 64 KiB buffer, TCP_NODELAY): >= 1.0x, in both
#           serving modes; a 1 GB file uploaded and downloaded through
#           file_server (scripts/bench-file.sh): >= 1 GB/s each, server
#           RSS < 50 MB
#   tls     the TLS echo, both modes, against a tokio-rustls echo
#           (benches/fixtures/tokio_tls.rs): ping-pong at 1, 16 and 256
#           connections >= 0.9x, the parked mode's at 16 and 256 >= 1.0x;
#           full and resumed handshakes per second; a good client's p99
#           with 200 clients stalled in their handshake within its p99
#           alone + 50 ms
#   parked  ParkedTcpServer (crate-parked) against a tokio echo
#           (tokio-tcp) and ThreadingTcpServer (crate-tcp), and, for the
#           event-driven rows, a bare epoll loop (epoll-tcp,
#           benches/fixtures/epoll_echo.rs) as the floor: ping-pong with
#           the event-driven client (--driver epoll) at 16, 64 and 256
#           connections, >= 1.05x tokio; with thread-per-connection
#           clients at 16, 64 and 256 connections and 16 KiB x16, >= 1.0x
#           tokio and >= 0.95x ThreadingTcpServer; the server's CPU per
#           request <= 1.05x tokio's in each of those rows; 16 requests
#           pipelined in one write at 16 connections (event-driven client)
#           >= 3x the same server's unpipelined rate; churn x16 >= 1x
#           ThreadingTcpServer; the longest wait: WAIT_RUNS (20)
#           consecutive runs of WAIT_SECONDS (3) at 16 connections
#           (event-driven client, no warm-up) against one parked server,
#           each run's longest latency < 100 ms and no request failed
#   limits  19,000 idle parked connections (clients in two processes on
#           127.0.0.2 and 127.0.0.3): RSS growth <= 2 KiB per connection,
#           threads <= workers + 4; shutdown with 10,000 parked connections:
#           serve_forever < 20 ms, process exit < 100 ms (and tokio's exit,
#           and a plain loop of close() calls: scripts/close-floor.py, for
#           comparison); slowloris: 10,000 connections sending a byte a
#           second, 64 workers: every fresh client served, p99 < 50 ms (and
#           what 100 such clients do to ThreadingTcpServer with 64 workers)
#   proto   real protocols, measured by their own clients against the real
#           thing (Debian's redis-server, redis-tools, nginx-light and wrk,
#           installed here when missing): kv_server against redis-server
#           (--save '' --appendonly no) with redis-benchmark -t set,get
#           -n 200000 -c 50 at -P 1 (>= 1.0x) and -P 16 (>= 0.8x);
#           http_server against nginx (2 worker processes, access_log off,
#           return 200 "hello, world", keepalive_requests 1000000) and a
#           hello-world hyper server (benches/fixtures/hyper_hello.rs) with
#           wrk -t1 -dDURATION at 64 and 256 connections (>= 1.0x each); the
#           threading mode's figures beside the parked ones, and every
#           server's CPU (nginx's workers included). REDIS_REQUESTS sets -n.
#   versions  (only asked for by name, with BASELINE_REV) this build's
#           ThreadingTcpServer and ThreadingUdpServer against the same
#           servers built from BASELINE_REV (in a worktree of its own; the
#           binary is kept in target/bench-compare/baseline-REV): the basic
#           group's ping-pong, churn and UDP scenarios, and the parked
#           server's ping-pong with both kinds of client, to show that a
#           restructuring left the speed as it was
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-4}
WARMUP=${WARMUP:-1}
ROUNDS=${ROUNDS:-3}
WAIT_RUNS=${WAIT_RUNS:-20}
WAIT_SECONDS=${WAIT_SECONDS:-3}
ONLY=${ONLY:-}
OUT=target/bench-compare
BIN=target/release/examples
mkdir -p "$OUT/logs"
RESULTS="$OUT/results.jsonl"
: > "$RESULTS"

command -v python3 >/dev/null || { echo "python3 is needed to write the table" >&2; exit 1; }
cargo build --release --quiet --features tls --example bench_server --example loadgen --example gen_tls_cert
# Many connections need a descriptor at each end: raise the soft limit to
# the hard one, here in the script, never in the library.
ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" -lt 20000 ]; then
    echo "the descriptor limit ($(ulimit -n)) is below the 20,000 the limits group needs" >&2
    exit 1
fi

SERVER_PID=
LOADGENS=()
cleanup() {
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null
    for pid in "${LOADGENS[@]}"; do kill "$pid" 2>/dev/null; done
    true
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP PIPE

wants() { [ -z "$ONLY" ] || [[ " $ONLY " == *" $1 "* ]]; }

# start_server LOG KIND [ARGS...]: starts bench_server, sets SERVER_PID and
# SERVER_ADDR from the first line it prints.
# A KIND ending in @baseline runs BASELINE_REV's bench_server (versions).
start_server() {
    local log=$1 kind=$2 bin=$BIN/bench_server
    shift 2
    if [[ "$kind" == *@baseline ]]; then
        bin=$BASELINE_BIN/bench_server
        kind=${kind%@baseline}
    fi
    # The log exists before the server starts: the background job opens
    # it in its own time, and the first read below must not fail.
    : > "$log"
    "$bin" --kind "$kind" "$@" > "$log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 200); do
        SERVER_ADDR=$(sed -n 's/^listening on //p' "$log")
        [ -n "$SERVER_ADDR" ] && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.05
    done
    echo "bench_server --kind $kind $* did not start:" >&2
    cat "$log" >&2
    exit 1
}

# stop_server: SIGTERM, and how long the process took to exit (ms) in
# STOPPED_MS.
stop_server() {
    local started
    started=$(date +%s%N)
    kill -TERM "$SERVER_PID"
    wait "$SERVER_PID" || true
    STOPPED_MS=$(( ($(date +%s%N) - started) / 1000000 ))
    SERVER_PID=
}

# cpu_ticks PID: user + system clock ticks of a process so far.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

status_field() { awk -v f="$2:" '$1 == f {print $2}' "/proc/$1/status"; }

# The kernel's counters that a run can raise without the server's doing,
# printed as "OVERFLOWS TIMEOUTS DROPS": connections dropped because an
# accept queue was full (ListenOverflows: the listen backlog, not the
# server); TCP retransmission timeouts (TCPTimeouts: a segment or SYN
# lost and resent after 200 ms or more, which a client sees as one slow
# request); packets dropped by a CPU's input backlog (the second column of
# /proc/net/softnet_stat, in hex: loopback traffic goes through it, and
# it holds net.core.netdev_max_backlog packets).
kernel_counters() {
    local drops=0 _processed dropped _rest
    while read -r _processed dropped _rest; do drops=$((drops + 16#$dropped)); done < /proc/net/softnet_stat
    awk -v drops="$drops" '/^TcpExt:/ { if (!seen) { split($0, names); seen = 1; next } split($0, values);
        for (i in names) { if (names[i] == "ListenOverflows") o = values[i]; if (names[i] == "TCPTimeouts") t = values[i] } }
        END { print o + 0, t + 0, drops }' /proc/net/netstat
}

# record SCENARIO SERVER ROUND TICKS RESULT COUNTERS_BEFORE: one run's line
# in the results, with what the kernel counted since COUNTERS_BEFORE (the
# output of kernel_counters when the run began).
record() {
    local overflows0 timeouts0 drops0 overflows1 timeouts1 drops1
    read -r overflows0 timeouts0 drops0 <<< "$6"
    read -r overflows1 timeouts1 drops1 <<< "$(kernel_counters)"
    printf '{"scenario":"%s","server":"%s","round":%d,"listen_overflows":%d,"tcp_timeouts":%d,"backlog_drops":%d,"cpu_ticks":%d,"result":%s}\n' \
        "$1" "$2" "$3" $((overflows1 - overflows0)) $((timeouts1 - timeouts0)) $((drops1 - drops0)) "$4" "$5" >> "$RESULTS"
}

# measure SCENARIO LABEL KIND SERVER_ARGS MODE CONNECTIONS ROUND [LOADGEN ARGS...]:
# one loadgen run against a fresh server, appended to the results under
# the server's LABEL.
measure() {
    local scenario=$1 label=$2 kind=$3 server_args=$4 mode=$5 connections=$6 round=$7
    shift 7
    local log
    log="$OUT/logs/$(echo "$scenario-$label-$round" | tr -c 'a-zA-Z0-9\n' '_').log"
    # shellcheck disable=SC2086
    start_server "$log" "$kind" $server_args
    local ticks result before
    before=$(kernel_counters)
    # A run with failed requests exits 1 but still reports: it is
    # recorded, and the report counts its failures. One that printed no
    # report (loadgen could not run) is recorded as null, and listed.
    result=$("$BIN/loadgen" "$mode" --target "$SERVER_ADDR" --connections "$connections" \
        --duration "${DURATION}s" --warmup "${WARMUP}s" --json "$@") || true
    ticks=$(cpu_ticks "$SERVER_PID")
    stop_server
    record "$scenario" "$label" "$round" "$ticks" "${result:-null}" "$before"
    echo "  $scenario $label round $round: $(summary <<< "$result")"
}

# summary: one loadgen JSON report (stdin) in a line.
summary() {
    python3 -c 'import json,sys; d=json.load(sys.stdin); print(round(d["throughput"]), "ops/s, p99", d["latency_us"]["p99"], "us, max", d["latency_us"]["max"], "us, failures", d["mismatches"]+d.get("short", 0)+d["errors"]+d["timeouts"]+d["lost"])'
}

# label SERVER: a server's name in the results: its kind, and the loadgen
# arguments it was measured with, if any.
label() {
    local entry=$1 extra=
    if [[ "$entry" == *+* ]]; then
        extra=" ${entry#*+}"
        entry=${entry%%+*}
    fi
    echo "${entry%%:*}$extra"
}

# compare SCENARIO MODE CONNECTIONS SUBJECT BASELINE... [LOADGEN ARGS...]:
# the subject and its baselines in turn, ROUNDS times, the order rotated
# every round (round r begins with the r-th server). A server is
# KIND[:SERVER ARGS][+LOADGEN ARGS]: "crate-parked:--workers 64" passes
# --workers 64 to bench_server, "crate-parked+--pipeline 16" passes
# --pipeline 16 to loadgen for that server's runs alone (and names it
# "crate-parked --pipeline 16"). The servers end at the first argument
# that begins with "-": the loadgen arguments of every run.
compare() {
    local scenario=$1 mode=$2 connections=$3
    shift 3
    local servers=()
    while [ $# -gt 0 ] && [[ "$1" != -* ]]; do
        servers+=("$1")
        shift
    done
    local count=${#servers[@]} labels=() entry
    for entry in "${servers[@]}"; do labels+=("$(label "$entry")"); done
    for round in $(seq "$ROUNDS"); do
        for i in $(seq 0 $((count - 1))); do
            local index=$(( (i + round - 1) % count )) extra=() server_args=""
            entry=${servers[$index]}
            if [[ "$entry" == *+* ]]; then
                read -r -a extra <<< "${entry#*+}"
                entry=${entry%%+*}
            fi
            [[ "$entry" == *:* ]] && server_args=${entry#*:}
            measure "$scenario" "${labels[$index]}" "${entry%%:*}" "$server_args" "$mode" "$connections" "$round" \
                "$@" "${extra[@]}"
        done
    done
    python3 -c 'import json,sys; print(json.dumps({"comparison": sys.argv[1], "subject": sys.argv[2], "baselines": sys.argv[3:]}))' \
        "$scenario" "${labels[@]}" >> "$RESULTS"
}

# longest_wait: WAIT_RUNS consecutive runs of WAIT_SECONDS, 16 connections,
# event-driven client, no warm-up (every request counts), against one
# parked server; each run's longest latency is recorded.
longest_wait() {
    start_server "$OUT/logs/longest-wait.log" crate-parked
    local run result
    for run in $(seq "$WAIT_RUNS"); do
        result=$("$BIN/loadgen" tcp --driver epoll --target "$SERVER_ADDR" --connections 16 \
            --duration "${WAIT_SECONDS}s" --warmup 0s --json) || true
        printf '{"scenario":"longest wait","server":"crate-parked","connections":16,"seconds":%s,"run":%d,"result":%s}\n' \
            "$WAIT_SECONDS" "$run" "${result:-null}" >> "$RESULTS"
        echo "  run $run: $(summary <<< "$result")"
    done
    stop_server
}

# wait_holding FILE COUNT: until loadgen's stderr says it holds COUNT.
wait_holding() {
    for _ in $(seq 1200); do
        grep -q "^holding $2" "$1" && return 0
        sleep 0.05
    done
    echo "the clients never all connected ($1)" >&2
    exit 1
}

# shutdown_holding KIND COUNT: starts KIND (grace 0), holds COUNT idle
# connections to it, stops it, and records how long serve_forever took to
# return and the process to exit.
shutdown_holding() {
    local kind=$1 count=$2
    start_server "$OUT/shutdown-$kind.log" "$kind" --grace 0ms
    "$BIN/loadgen" idle --target "$SERVER_ADDR" --connections "$count" --hold --duration 120s --timeout 20s \
        --json > "$OUT/shutdown-$kind.json" 2> "$OUT/shutdown-$kind.err" &
    LOADGENS=($!)
    wait_holding "$OUT/shutdown-$kind.err" "$count"
    stop_server
    # Its report is recorded whether or not it passed.
    wait "${LOADGENS[0]}" || true
    LOADGENS=()
    local took
    took=$(sed -n 's/^shutdown took \([0-9]*\) us/\1/p' "$OUT/shutdown-$kind.log")
    printf '{"scenario":"shutdown","server":"%s","clients":%s,"shutdown_us":%s,"exit_ms":%s}\n' \
        "$kind" "$count" "${took:-null}" "$STOPPED_MS" >> "$RESULTS"
    echo "  $kind with $count: serve_forever ${took:-n/a} us, process exit ${STOPPED_MS} ms"
}

if wants basic; then
    echo "basic: the per-connection servers against plain std ones ($ROUNDS rounds of ${DURATION} s after ${WARMUP} s warm-up)"
    compare "tcp 64 B x1" tcp 1 crate-tcp plain-tcp
    compare "tcp 64 B x64" tcp 64 crate-tcp plain-tcp
    compare "tcp 64 B x256" tcp 256 crate-tcp plain-tcp
    compare "churn x16" churn 16 crate-tcp plain-tcp
    compare "churn x16 at 8000/s" churn 16 crate-tcp plain-tcp --rate 8000
    compare "udp 64 B x1" udp 1 crate-udp plain-udp
    compare "udp 64 B x16" udp 16 crate-udp plain-udp

    echo "basic: 10,000 idle connections to ThreadingTcpServer (worker stacks of 64 KiB)"
    start_server "$OUT/idle-threading.log" crate-tcp --stack 64KiB
    idle=$("$BIN/loadgen" idle --target "$SERVER_ADDR" --connections 10000 --hold --duration 3s --timeout 20s --json) || true
    stop_server
    rss=$(sed -n 's/^peak rss \([0-9]*\) KiB/\1/p' "$OUT/idle-threading.log")
    printf '{"scenario":"idle threading","peak_rss_kib":%s,"result":%s}\n' "$rss" "$idle" >> "$RESULTS"

    echo "basic: shutdown() of ThreadingTcpServer with 1,000 idle clients (grace 0)"
    shutdown_holding crate-tcp 1000
fi

if wants bulk; then
    echo "bulk: the echo with large messages against a plain server written for bulk data (64 KiB buffer, TCP_NODELAY)"
    for size in 16KiB 64KiB 1MiB; do
        for clients in 1 16; do
            compare "tcp $size x$clients" tcp "$clients" crate-tcp plain-tcp-bulk --size "$size"
        done
    done
    # The parked server's two workers share the cores with the clients: an
    # event-driven client keeps the scheduler from starving them (see the
    # parked group).
    compare "parked tcp 64KiB x16, epoll client" tcp 16 crate-parked plain-tcp-bulk --size 64KiB --driver epoll
    compare "parked tcp 1MiB x16, epoll client" tcp 16 crate-parked plain-tcp-bulk --size 1MiB --driver epoll
    if [ -x scripts/bench-file.sh ]; then
        echo "bulk: a 1 GB file up and down through file_server"
        scripts/bench-file.sh --json >> "$RESULTS"
    fi
fi

if wants tls; then
    echo "tls: the crate's TLS echo (both modes) against a tokio-rustls one ($ROUNDS rounds of ${DURATION} s)"
    TLS_DIR="$OUT/tls"
    "$BIN/gen_tls_cert" --out-dir "$TLS_DIR" --force > /dev/null
    CERTS="--tls-cert $TLS_DIR/server.pem --tls-key $TLS_DIR/server.key"
    TLS_CLIENT=(--tls --tls-ca "$TLS_DIR/ca.pem")
    for clients in 1 16 256; do
        compare "tls 64 B x$clients" tcp "$clients" "crate-tls:$CERTS" "tokio-tls:$CERTS" "${TLS_CLIENT[@]}"
        compare "parked tls 64 B x$clients" tcp "$clients" "crate-parked-tls:$CERTS" "tokio-tls:$CERTS" "${TLS_CLIENT[@]}"
    done
    compare "tls handshakes x16, resumed" churn 16 "crate-tls:$CERTS" "tokio-tls:$CERTS" "${TLS_CLIENT[@]}"
    compare "tls handshakes x16, full" churn 16 "crate-tls:$CERTS" "tokio-tls:$CERTS" "${TLS_CLIENT[@]}" --no-resume
    compare "parked tls handshakes x16, full" churn 16 "crate-parked-tls:$CERTS" "tokio-tls:$CERTS" "${TLS_CLIENT[@]}" --no-resume

    echo "tls: a good client's round trips while 200 clients stall in their handshake"
    for kind in crate-tls crate-parked-tls tokio-tls; do
        # shellcheck disable=SC2086
        start_server "$OUT/stall-$kind.log" "$kind" $CERTS
        alone=$("$BIN/loadgen" tcp --target "$SERVER_ADDR" --connections 1 --duration "${DURATION}s" \
            --warmup "${WARMUP}s" --json "${TLS_CLIENT[@]}") || true
        python3 scripts/stall-connections.py "$SERVER_ADDR" 200 --duration "$((DURATION + WARMUP + 5))" \
            > "$OUT/stall-$kind.json" 2> "$OUT/stall-$kind.err" &
        LOADGENS=($!)
        wait_holding "$OUT/stall-$kind.err" 200
        stalled=$("$BIN/loadgen" tcp --target "$SERVER_ADDR" --connections 1 --duration "${DURATION}s" \
            --warmup "${WARMUP}s" --json "${TLS_CLIENT[@]}") || true
        stop_server
        wait "${LOADGENS[0]}" || true
        LOADGENS=()
        printf '{"scenario":"tls stalled","server":"%s","alone":%s,"stalled":%s}\n' "$kind" "$alone" "$stalled" >> "$RESULTS"
        echo "  $kind: p99 alone $(python3 -c 'import json,sys; print(json.load(sys.stdin)["latency_us"]["p99"])' <<< "$alone") us, with 200 stalled $(python3 -c 'import json,sys; print(json.load(sys.stdin)["latency_us"]["p99"])' <<< "$stalled") us"
    done
fi

if wants parked; then
    echo "parked: ParkedTcpServer against tokio, ThreadingTcpServer and a bare epoll loop ($ROUNDS rounds of ${DURATION} s)"
    for clients in 16 64 256; do
        compare "parked tcp 64 B x$clients, epoll client" tcp "$clients" crate-parked tokio-tcp crate-tcp epoll-tcp \
            --driver epoll
    done
    for clients in 16 64 256; do
        compare "parked tcp 64 B x$clients" tcp "$clients" crate-parked tokio-tcp crate-tcp
    done
    compare "parked tcp 16KiB x16" tcp 16 crate-parked tokio-tcp crate-tcp --size 16KiB
    compare "parked pipelined 16 x16, epoll client" tcp 16 "crate-parked+--pipeline 16" crate-parked --driver epoll
    compare "parked churn x16" churn 16 crate-parked crate-tcp
    echo "parked: the longest wait, $WAIT_RUNS consecutive runs of $WAIT_SECONDS s at 16 connections (event-driven client)"
    longest_wait
fi

if wants limits; then
    echo "limits: 19,000 idle parked connections"
    start_server "$OUT/idle-parked.log" crate-parked
    rss_before=$(status_field "$SERVER_PID" VmRSS)
    threads_before=$(status_field "$SERVER_PID" Threads)
    slab_before=$(awk '$1 == "Slab:" {print $2}' /proc/meminfo)
    LOADGENS=()
    for source in 2 3; do
        "$BIN/loadgen" idle --target "$SERVER_ADDR" --connections 9500 --source "127.0.0.$source" --hold \
            --duration 120s --timeout 20s --json > "$OUT/idle-parked-$source.json" 2> "$OUT/idle-parked-$source.err" &
        LOADGENS+=($!)
    done
    wait_holding "$OUT/idle-parked-2.err" 9500
    wait_holding "$OUT/idle-parked-3.err" 9500
    rss_after=$(status_field "$SERVER_PID" VmRSS)
    threads_after=$(status_field "$SERVER_PID" Threads)
    slab_after=$(awk '$1 == "Slab:" {print $2}' /proc/meminfo)
    stop_server
    workers=$(sed -n 's/^workers \([0-9]*\)/\1/p' "$OUT/idle-parked.log")
    for pid in "${LOADGENS[@]}"; do wait "$pid" || true; done
    LOADGENS=()
    took=$(sed -n 's/^shutdown took \([0-9]*\) us/\1/p' "$OUT/idle-parked.log")
    printf '{"scenario":"idle parked","rss_before_kib":%s,"rss_after_kib":%s,"threads_before":%s,"threads_after":%s,"workers":%s,"slab_kib":%s,"shutdown_us":%s,"exit_ms":%s,"results":[%s,%s]}\n' \
        "$rss_before" "$rss_after" "$threads_before" "$threads_after" "$workers" "$((slab_after - slab_before))" "$took" "$STOPPED_MS" \
        "$(cat "$OUT/idle-parked-2.json")" "$(cat "$OUT/idle-parked-3.json")" >> "$RESULTS"
    echo "  19,000 parked: RSS ${rss_before} -> ${rss_after} KiB, threads ${threads_before} -> ${threads_after}"

    for kind in crate-parked tokio-tcp; do
        echo "limits: stopping $kind with 10,000 idle connections"
        shutdown_holding "$kind" 10000
    done
    echo "limits: the kernel's floor: a plain loop closing 10,000 loopback connections"
    floor=$(python3 scripts/close-floor.py 10000)
    printf '{"scenario":"close floor","result":%s}\n' "$floor" >> "$RESULTS"
    echo "  $floor"

    # slowloris KIND SERVER_ARGS SLOW_CONNECTIONS: slow clients from
    # 127.0.0.2, then fresh clients (churn) while they go on.
    slowloris() {
        local kind=$1 server_args=$2 slow=$3
        # shellcheck disable=SC2086
        start_server "$OUT/slowloris-$kind.log" "$kind" $server_args
        "$BIN/loadgen" slow --target "$SERVER_ADDR" --connections "$slow" --source 127.0.0.2 --interval 1s \
            --duration "$((DURATION + 6))s" --warmup 0s --timeout 5s --json > "$OUT/slowloris-$kind-slow.json" &
        LOADGENS=($!)
        sleep 3
        local fresh
        # Behind 100 slow clients ThreadingTcpServer serves none: loadgen
        # exits 1, and its report is what this records.
        fresh=$("$BIN/loadgen" churn --target "$SERVER_ADDR" --connections 4 --duration "${DURATION}s" \
            --warmup 0s --timeout 2s --json) || true
        local threads
        threads=$(status_field "$SERVER_PID" Threads)
        # Slow clients the server never answers time out: recorded, not
        # fatal.
        wait "${LOADGENS[0]}" || true
        LOADGENS=()
        stop_server
        printf '{"scenario":"slowloris","server":"%s","slow":%s,"threads":%s,"fresh":%s,"slow_result":%s}\n' \
            "$kind" "$slow" "$threads" "$fresh" "$(cat "$OUT/slowloris-$kind-slow.json")" >> "$RESULTS"
        echo "  slowloris $kind ($slow slow clients): fresh clients $(python3 -c 'import json,sys; d=json.load(sys.stdin); print(round(d["throughput"]), "conn/s, p99", d["latency_us"]["p99"], "us, failures", d["errors"]+d["timeouts"]+d.get("short", 0))' <<< "$fresh")"
    }
    echo "limits: slow clients"
    slowloris crate-parked "--workers 64" 10000
    slowloris crate-tcp "--workers 64" 100
fi

if wants proto; then
    # The reference servers and the real clients, from Debian's packages.
    need=()
    command -v redis-server >/dev/null || need+=(redis-server)
    command -v redis-benchmark >/dev/null || need+=(redis-tools)
    command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
    command -v wrk >/dev/null || need+=(wrk)
    command -v curl >/dev/null || need+=(curl)
    if [ ${#need[@]} -gt 0 ]; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
            apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
        else
            echo "the proto group needs the Debian packages ${need[*]} (apt-get install ${need[*]})" >&2
            exit 1
        fi
    fi
    NGINX=$(command -v nginx || echo /usr/sbin/nginx)
    cargo build --release --quiet --example kv_server --example http_server
    REDIS_REQUESTS=${REDIS_REQUESTS:-200000}

    free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

    # wait_answering DESCRIPTION COMMAND...: until COMMAND succeeds (10 s).
    wait_answering() {
        local what=$1
        shift
        for _ in $(seq 200); do
            "$@" >/dev/null 2>&1 && return 0
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.05
        done
        echo "$what did not start" >&2
        exit 1
    }

    # start_proto LOG KIND: starts one of the proto group's servers; sets
    # SERVER_PID and SERVER_ADDR.
    start_proto() {
        local log=$1 kind=$2 port
        case $kind in
            redis)
                port=$(free_port)
                mkdir -p "$OUT/redis"
                redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
                    --dir "$OUT/redis" > "$log" 2>&1 &
                SERVER_PID=$!
                SERVER_ADDR=127.0.0.1:$port
                wait_answering redis-server redis-cli -p "$port" ping
                ;;
            nginx)
                port=$(free_port)
                mkdir -p "$OUT/nginx/logs"
                cat > "$OUT/nginx/nginx.conf" <<NGINX
worker_processes 2;
pid $PWD/$OUT/nginx/nginx.pid;
error_log $PWD/$OUT/nginx/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path $PWD/$OUT/nginx/body;
    server {
        listen 127.0.0.1:$port;
        location / { default_type text/plain; return 200 "hello, world\n"; }
    }
}
NGINX
                "$NGINX" -p "$PWD/$OUT/nginx" -c "$PWD/$OUT/nginx/nginx.conf" -g 'daemon off;' > "$log" 2>&1 &
                SERVER_PID=$!
                SERVER_ADDR=127.0.0.1:$port
                wait_answering nginx curl -sf "http://$SERVER_ADDR/"
                ;;
            hyper)
                start_server "$log" hyper-http
                ;;
            kv-parked|kv-threading|http-parked|http-threading)
                local program=${kind%%-*}_server args=()
                [[ $kind == *-threading ]] && args=(--threading)
                : > "$log"
                "$BIN/$program" --port 0 "${args[@]}" > "$log" 2>&1 &
                SERVER_PID=$!
                for _ in $(seq 200); do
                    SERVER_ADDR=$(sed -n 's/^listening on //p' "$log")
                    [ -n "$SERVER_ADDR" ] && break
                    sleep 0.05
                done
                [ -n "$SERVER_ADDR" ] || { echo "$program did not start:" >&2; cat "$log" >&2; exit 1; }
                ;;
        esac
    }

    # tree_ticks PID: CPU ticks of a process and its children (nginx's
    # workers).
    tree_ticks() {
        local total=0 pid
        for pid in "$1" $(pgrep -P "$1"); do
            total=$((total + $(cpu_ticks "$pid")))
        done
        echo "$total"
    }

    # measure_proto SCENARIO KIND ROUND CLIENT: one client run against a
    # fresh server; CLIENT is redis-benchmark or wrk, its arguments after it.
    measure_proto() {
        local scenario=$1 kind=$2 round=$3 client=$4
        shift 4
        local log raw result ticks before
        log="$OUT/logs/$(echo "$scenario-$kind-$round" | tr -c 'a-zA-Z0-9\n' '_').log"
        start_proto "$log" "$kind"
        before=$(kernel_counters)
        local host=${SERVER_ADDR%:*} port=${SERVER_ADDR##*:}
        case $client in
            redis-benchmark)
                raw=$(redis-benchmark -h "$host" -p "$port" --csv "$@" 2>&1) || true
                ;;
            wrk)
                raw=$(wrk --latency "$@" "http://$SERVER_ADDR/" 2>&1) || true
                ;;
        esac
        ticks=$(tree_ticks "$SERVER_PID")
        stop_server
        result=$(python3 scripts/bench-report.py --parse "$client" "$REDIS_REQUESTS" <<< "$raw")
        record "$scenario" "$kind" "$round" "$ticks" "$result" "$before"
        echo "  $scenario $kind round $round: $(python3 -c 'import json,sys; d=json.load(sys.stdin); print(round(d["throughput"]), "requests/s, p99", d["latency_us"]["p99"], "us, errors", d["errors"] + d["mismatches"])' <<< "$result")"
    }

    # compare_proto SCENARIO SUBJECT BASELINE CLIENT [ARGS...]: the two in
    # turn, ROUNDS times, the first one alternating.
    compare_proto() {
        local scenario=$1 subject=$2 baseline=$3
        shift 3
        for round in $(seq "$ROUNDS"); do
            local order=("$subject" "$baseline")
            [ $((round % 2)) = 0 ] && order=("$baseline" "$subject")
            for kind in "${order[@]}"; do
                measure_proto "$scenario" "$kind" "$round" "$@"
            done
        done
        printf '{"comparison":"%s","subject":"%s","baseline":"%s"}\n' "$scenario" "$subject" "$baseline" >> "$RESULTS"
    }

    echo "proto: kv_server against redis-server, redis-benchmark -t set,get -n $REDIS_REQUESTS -c 50 ($ROUNDS rounds)"
    for pipeline in 1 16; do
        bench=(redis-benchmark -t set,get -n "$REDIS_REQUESTS" -c 50 -P "$pipeline")
        compare_proto "redis-benchmark -P $pipeline" kv-parked redis "${bench[@]}"
        compare_proto "redis-benchmark -P $pipeline, threading" kv-threading redis "${bench[@]}"
    done
    echo "proto: http_server against nginx and hyper, wrk -t1 -d${DURATION}s ($ROUNDS rounds)"
    for connections in 64 256; do
        load=(wrk -t1 "-c$connections" "-d${DURATION}s")
        compare_proto "wrk -c$connections vs nginx" http-parked nginx "${load[@]}"
        compare_proto "wrk -c$connections vs hyper" http-parked hyper "${load[@]}"
        compare_proto "wrk -c$connections vs nginx, threading" http-threading nginx "${load[@]}"
    done
fi

if [ "$ONLY" = versions ]; then
    rev=${BASELINE_REV:?ONLY=versions needs BASELINE_REV, the git revision to compare with}
    short=$(git rev-parse --short "$rev^{commit}")
    BASELINE_BIN="$OUT/baseline-$short"
    if [ ! -x "$BASELINE_BIN/bench_server" ]; then
        echo "versions: building bench_server at $short"
        tree=$(mktemp -d)
        git worktree add --detach --quiet "$tree" "$short"
        # One target directory for every baseline: the next one builds
        # only what changed.
        target_dir="$PWD/$OUT/baseline-target"
        built=0
        (cd "$tree" && CARGO_TARGET_DIR="$target_dir" cargo build --release --quiet --example bench_server) && built=1
        mkdir -p "$BASELINE_BIN"
        [ "$built" = 1 ] && cp "$target_dir/release/examples/bench_server" "$BASELINE_BIN/"
        git worktree remove --force "$tree"
        [ "$built" = 1 ] || { echo "bench_server did not build at $short" >&2; exit 1; }
    fi
    echo "versions: this build against $short ($ROUNDS rounds of ${DURATION} s after ${WARMUP} s warm-up)"
    for clients in 1 64 256; do
        compare "versions: tcp 64 B x$clients" tcp "$clients" crate-tcp crate-tcp@baseline
    done
    compare "versions: churn x16" churn 16 crate-tcp crate-tcp@baseline
    compare "versions: udp 64 B x1" udp 1 crate-udp crate-udp@baseline
    compare "versions: udp 64 B x16" udp 16 crate-udp crate-udp@baseline
    for clients in 16 64 256; do
        compare "versions: parked tcp 64 B x$clients" tcp "$clients" crate-parked crate-parked@baseline
    done
    compare "versions: parked tcp 64 B x16, epoll client" tcp 16 crate-parked crate-parked@baseline --driver epoll
    compare "versions: parked tcp 64 B x256, epoll client" tcp 256 crate-parked crate-parked@baseline --driver epoll
fi

python3 scripts/bench-report.py "$RESULTS" "$DURATION" "$WARMUP" "$ROUNDS" > "$OUT/table.md"
echo
cat "$OUT/table.md"

# UPDATE_REPORT=1: the report replaces PERFORMANCE.md's measured tables,
# between the bench-compare markers (with the groups run, when ONLY= names
# some).
if [ "${UPDATE_REPORT:-${UPDATE_README:-0}}" = 1 ]; then
    if [ "$ONLY" = versions ]; then
        echo "UPDATE_REPORT: a versions run compares two builds of the crate; it is not the report" >&2
        exit 1
    fi
    python3 - "$OUT/table.md" "${ONLY:-all}" <<'PY'
import sys
begin, end = "<!-- bench-compare:begin -->", "<!-- bench-compare:end -->"
table = open(sys.argv[1]).read().strip()
if sys.argv[2] != "all":
    table = "Groups run: %s.\n\n%s" % (", ".join(sys.argv[2].split()), table)
report = open("PERFORMANCE.md").read()
head, rest = report.split(begin, 1)
_, tail = rest.split(end, 1)
open("PERFORMANCE.md", "w").write(head + begin + "\n" + table + "\n" + end + tail)
PY
    echo "PERFORMANCE.md updated"
fi
