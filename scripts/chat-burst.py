#!/usr/bin/env python3
"""A burst of JOINs against chat_server, from distinct sockets, and what it
cost the server.

    cargo build --release --example chat_server
    scripts/chat-burst.py [--joins 5000] [-- SERVER OPTIONS...]

Starts target/release/examples/chat_server on a free loopback port with the
options given after "--", opens JOINS UDP sockets, and sends one
"JOIN name" from each, back to back. Every cookie that comes back is
echoed at once ("JOIN name COOKIE"), as chat_client does. When no datagram
has arrived for a second, it counts how each join ended (welcomed, refused
and why, unanswered), the server's CPU time over the burst (all its threads,
from /proc/PID/task/*/schedstat), and the datagrams the server sent (its own count,
logged when it stops), per join. Loopback only; it stops by itself.
"""

import argparse
import collections
import os
import resource
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time

SERVER = os.path.join(os.path.dirname(__file__), "..", "target", "release", "examples", "chat_server")
QUIET = 1.0  # seconds without a datagram that end the burst
LIMIT = 60.0  # seconds the burst may take at most


def cpu_seconds(pid):
    """The time the process's threads have spent on a CPU (schedstat, ns)."""
    total = 0
    for task in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/schedstat" % (pid, task)) as f:
                total += int(f.read().split()[0])
        except FileNotFoundError:
            pass  # a thread that just ended
    return total / 1e9


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--joins", type=int, default=5000)
    parser.add_argument("server_args", nargs="*")
    args = parser.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < args.joins + 64:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, args.joins + 64), hard))

    # Its log goes to a file: a pipe read only at the end would fill up
    # and stall the server.
    log_file = tempfile.TemporaryFile(mode="w+")
    server = subprocess.Popen(
        [SERVER, "--port", "0"] + args.server_args,
        stdout=subprocess.PIPE,
        stderr=log_file,
        env=dict(os.environ, RUST_LOG="warn,chat_server=info"),
        text=True,
    )
    try:
        first = server.stdout.readline().strip()
        host, port = first.removeprefix("listening on ").rsplit(":", 1)
        addr = (host, int(port))

        sockets = []
        for _ in range(args.joins):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("127.0.0.1", 0))
            s.setblocking(False)
            sockets.append(s)
        poller = select.epoll()
        by_fd = {}
        for n, s in enumerate(sockets):
            poller.register(s.fileno(), select.EPOLLIN)
            by_fd[s.fileno()] = n

        outcome = {}  # join number -> its last answer
        received = 0
        cpu_before = cpu_seconds(server.pid)
        started = time.monotonic()
        for n, s in enumerate(sockets):
            s.sendto(b"JOIN m%d" % n, addr)
        sent_at = time.monotonic()
        last = time.monotonic()
        while time.monotonic() - last < QUIET and time.monotonic() - started < LIMIT:
            for fd, _ in poller.poll(0.1):
                n = by_fd[fd]
                s = sockets[n]
                while True:
                    try:
                        data = s.recv(65536)
                    except BlockingIOError:
                        break
                    received += 1
                    last = time.monotonic()
                    line = data.decode("utf-8", "replace")
                    if line.startswith("* confirm "):
                        s.sendto(b"JOIN m%d %s" % (n, line[len("* confirm "):].encode()), addr)
                        outcome[n] = "cookie, confirmation unanswered"
                    elif line.startswith("* welcome") or line.startswith("!"):
                        outcome[n] = line
                    # anything else is news
        elapsed = last - started
        cpu = cpu_seconds(server.pid) - cpu_before
    finally:
        server.send_signal(signal.SIGTERM)
        server.communicate(timeout=30)
        log_file.seek(0)
        log = log_file.read()

    sent_by_server = None
    for line in log.splitlines():
        if "] sent " in line and line.endswith(" datagrams"):
            sent_by_server = int(line.rsplit("] sent ", 1)[1].split()[0])

    kinds = collections.Counter()
    for n in range(args.joins):
        answer = outcome.get(n, "no answer")
        if answer.startswith("* welcome"):
            answer = "welcomed"
        elif answer.startswith("! the name"):
            answer = "! the name is taken"
        kinds[answer] += 1
    print("server options: %s" % (" ".join(args.server_args) or "(defaults)"))
    print("%d JOINs from %d sockets, sent in %.0f ms; answers until %.0f ms" % (
        args.joins, args.joins, (sent_at - started) * 1000, elapsed * 1000))
    for answer, count in kinds.most_common():
        print("  %6d  %s" % (count, answer))
    print("server CPU time over the burst: %.1f ms" % (cpu * 1000))
    if sent_by_server is not None:
        print("datagrams the server sent: %d (%.2f per join); the clients received %d" % (
            sent_by_server, sent_by_server / args.joins, received))
    unanswered = kinds["no answer"] + kinds["cookie, confirmation unanswered"]
    sys.exit(1 if unanswered else 0)


if __name__ == "__main__":
    main()
