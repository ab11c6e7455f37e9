#!/usr/bin/env bash
# File transfer throughput over loopback (issue 10): uploads a file to
# file_server with file_client, downloads it back, checks the SHA-256 at
# both ends, and reports MB/s (10^6 bytes a second) each way and the
# server's peak RSS (VmHWM). Baselines in the same run, so readers see the
# floor: a plain copy of the same file over a loopback TCP pair into a
# file with fsync and no hashing (Python, socket.sendfile), and SHA-256 of
# the file on one core (Python's hashlib, OpenSSL).
#
#   scripts/bench-file.sh                  # 1 GiB, one run, a table
#   scripts/bench-file.sh --runs 3 --json  # one JSON object a line
#   scripts/bench-file.sh --size-mb 200
#
# Everything lives in a temporary directory under target/, removed at exit
# (also on Ctrl-C), with the server. The file is read from the page cache
# (it was just written), as a file served twice is.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
    sed -n '2,17s/^# \{0,1\}//p' "$0"
    echo "options: --json  --runs N (default 1)  --size-mb N (MiB, default 1024)  --no-build"
}

JSON=0
RUNS=1
SIZE_MB=1024
BUILD=1
while [ $# -gt 0 ]; do
    case "$1" in
        --json) JSON=1 ;;
        --runs) RUNS="${2:?--runs needs a number}"; shift ;;
        --size-mb) SIZE_MB="${2:?--size-mb needs a number}"; shift ;;
        --no-build) BUILD=0 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "bench-file.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done
case "$RUNS$SIZE_MB" in
    *[!0-9]*) echo "bench-file.sh: --runs and --size-mb take whole numbers" >&2; exit 2 ;;
esac

say() { [ "$JSON" = 1 ] || echo "$@"; }

if [ "$BUILD" = 1 ]; then
    say "building file_server and file_client (release)..."
    cargo build --quiet --release --features message --example file_server --example file_client
fi
BIN=target/release/examples
for tool in file_server file_client; do
    [ -x "$BIN/$tool" ] || { echo "bench-file.sh: $BIN/$tool is missing (drop --no-build)" >&2; exit 1; }
done

mkdir -p target
WORK=$(mktemp -d target/bench-file.XXXXXX)
SERVER_PID=""
cleanup() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
mkdir "$WORK/src" "$WORK/store" "$WORK/down" "$WORK/plain"

BYTES=$((SIZE_MB * 1024 * 1024))
SOURCE="$WORK/src/bench.bin"
say "writing a ${SIZE_MB} MiB file of random bytes..."
head -c "$BYTES" /dev/urandom >"$SOURCE"
SOURCE_SHA=$(sha256sum "$SOURCE" | cut -d' ' -f1)

"$BIN/file_server" --port 0 --host 127.0.0.1 --dir "$WORK/store" >"$WORK/server.out" 2>"$WORK/server.log" &
SERVER_PID=$!
PORT=""
for _ in $(seq 100); do
    PORT=$(sed -n 's/^listening on .*:\([0-9][0-9]*\)$/\1/p' "$WORK/server.out")
    [ -n "$PORT" ] && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log" >&2; exit 1; }
    sleep 0.1
done
[ -n "$PORT" ] || { echo "bench-file.sh: file_server did not start" >&2; cat "$WORK/server.log" >&2; exit 1; }

peak_rss_kib() { sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB$/\1/p' "/proc/$SERVER_PID/status"; }

# The SHA-256 in a client's "stored/saved NAME (N bytes, sha256 H) in S s, R MB/s".
sha_of() { sed -n 's/.*sha256 \([0-9a-f]\{64\}\)).*/\1/p' <<<"$1"; }
seconds_of() { sed -n 's/.*) in \([0-9.]*\) s, .*/\1/p' <<<"$1"; }
rate() { awk -v b="$1" -v s="$2" 'BEGIN { printf "%.0f", (s > 0 ? b / s / 1e6 : 0) }'; }

check_sha() {
    local what="$1" got="$2"
    if [ "$got" != "$SOURCE_SHA" ]; then
        echo "bench-file.sh: $what: sha256 $got, expected $SOURCE_SHA" >&2
        exit 1
    fi
}

RESULTS=()
result() { # case run seconds [extra json fields]
    local mbps
    mbps=$(rate "$BYTES" "$3")
    RESULTS+=("$1 $2 $3 $mbps")
    if [ "$JSON" = 1 ]; then
        printf '{"bench":"file","case":"%s","run":%s,"bytes":%s,"seconds":%s,"mb_per_s":%s%s}\n' \
            "$1" "$2" "$BYTES" "$3" "$mbps" "${4:-}"
    fi
}

for run in $(seq "$RUNS"); do
    say "run $run of $RUNS..."
    up=$("$BIN/file_client" --port "$PORT" --quiet put "$SOURCE" --name bench.bin)
    check_sha "upload (client)" "$(sha_of "$up")"
    check_sha "upload (stored file)" "$(sha256sum "$WORK/store/bench.bin" | cut -d' ' -f1)"
    result upload "$run" "$(seconds_of "$up")" ",\"sha256_verified\":true,\"server_peak_rss_kib\":$(peak_rss_kib)"

    rm -f "$WORK/down/bench.bin"
    down=$("$BIN/file_client" --port "$PORT" --quiet get bench.bin --out "$WORK/down")
    check_sha "download (client)" "$(sha_of "$down")"
    check_sha "download (saved file)" "$(sha256sum "$WORK/down/bench.bin" | cut -d' ' -f1)"
    result download "$run" "$(seconds_of "$down")" ",\"sha256_verified\":true,\"server_peak_rss_kib\":$(peak_rss_kib)"

    # The floor: the same bytes over loopback TCP into a file, fsync'd,
    # without hashing; then hashing alone, on one core.
    plain=$(python3 - "$SOURCE" "$WORK/plain/bench.bin" <<'PY'
import os, socket, sys, threading, time
source, target = sys.argv[1], sys.argv[2]
listener = socket.create_server(("127.0.0.1", 0))
def receive():
    conn, _ = listener.accept()
    buffer = bytearray(1 << 20)
    view = memoryview(buffer)
    with conn, open(target, "wb") as out:
        while True:
            n = conn.recv_into(buffer)
            if n == 0:
                break
            out.write(view[:n])
        out.flush()
        os.fsync(out.fileno())
started = time.monotonic()
receiver = threading.Thread(target=receive)
receiver.start()
with socket.create_connection(listener.getsockname()) as conn, open(source, "rb") as f:
    conn.sendfile(f)
receiver.join()
print(f"{time.monotonic() - started:.3f}")
PY
)
    [ "$(stat -c %s "$WORK/plain/bench.bin")" = "$BYTES" ] || { echo "bench-file.sh: the plain copy is short" >&2; exit 1; }
    rm -f "$WORK/plain/bench.bin"
    result plain-copy "$run" "$plain"

    hashed=$(python3 - "$SOURCE" <<'PY'
import hashlib, sys, time
started = time.monotonic()
digest = hashlib.sha256()
with open(sys.argv[1], "rb") as f:
    while chunk := f.read(1 << 20):
        digest.update(chunk)
print(f"{time.monotonic() - started:.3f}")
PY
)
    result sha256-one-core "$run" "$hashed"
done

PEAK=$(peak_rss_kib)
if [ "$JSON" = 1 ]; then
    printf '{"bench":"file","case":"server-peak-rss","kib":%s}\n' "$PEAK"
else
    echo
    printf '%-16s %4s %9s %9s\n' case run seconds "MB/s"
    for line in "${RESULTS[@]}"; do
        # shellcheck disable=SC2086
        printf '%-16s %4s %9s %9s\n' $line
    done
    echo
    echo "file: $SIZE_MB MiB ($BYTES bytes), sha256 $SOURCE_SHA, verified at both ends"
    echo "server peak RSS (VmHWM): $((PEAK / 1024)) MiB ($PEAK kB)"
    echo "plain-copy: the same bytes over loopback TCP into a file with fsync, no hashing (Python, sendfile)"
    echo "sha256-one-core: hashing the file alone on one core (Python hashlib)"
fi
