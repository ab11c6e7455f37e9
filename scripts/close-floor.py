#!/usr/bin/env python3
"""The kernel's floor for closing many TCP connections on this machine.

    scripts/close-floor.py 10000          # prints one JSON object

Accepts COUNT loopback connections from a client process that holds them,
then closes them all in a plain loop of close() calls and reports how long
that took: what any server pays to close that many connections here (a
FIN each, and over loopback the peer's side of it too), with no server
code in the way. scripts/bench-compare.sh sets the parked server's
shutdown figures beside it.
"""
import json
import os
import resource
import socket
import subprocess
import sys
import time

CLIENT = """
import resource, socket, sys
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
held = [socket.create_connection(("127.0.0.1", int(sys.argv[1]))) for _ in range(int(sys.argv[2]))]
print("holding", flush=True)
sys.stdin.read()
"""


def main():
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < count + 64:
        sys.exit("the descriptor limit (%d) is below the %d connections asked for" % (hard, count))
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4096)
    # A client process that dies must not leave this waiting for ever.
    listener.settimeout(60)
    port = listener.getsockname()[1]
    client = subprocess.Popen(
        [sys.executable, "-c", CLIENT, str(port), str(count)], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        fds = []
        while len(fds) < count:
            conn, _ = listener.accept()
            fds.append(conn.detach())
        if client.stdout.readline().strip() != b"holding":
            sys.exit("the client process failed to connect")
        started, cpu = time.perf_counter(), os.times()
        for fd in fds:
            os.close(fd)
        took, cpu_after = time.perf_counter() - started, os.times()
    finally:
        client.stdin.close()
        client.wait()
    print(json.dumps({
        "connections": count,
        "close_ms": round(took * 1000, 1),
        "cpu_ms": round((cpu_after.user + cpu_after.system - cpu.user - cpu.system) * 1000),
        "per_close_us": round(took / count * 1e6, 2),
    }))


if __name__ == "__main__":
    main()
