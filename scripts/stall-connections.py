#!/usr/bin/env python3
"""Opens connections that send nothing, and holds them: stalled handshakes
for a TLS server (a client that never sends its hello), or slow clients
for a plain one.

    scripts/stall-connections.py 127.0.0.1:9999 200 --duration 30

Prints "holding N" on stderr once every connection is open, then keeps
them until the duration ends (or the server has closed them all), and
prints one JSON object: how many were opened and how many the server
closed (a TLS server drops a stalled handshake at its timeout).
"""
import argparse
import json
import selectors
import socket
import sys
import time


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", help="host:port (loopback)")
    parser.add_argument("connections", type=int)
    parser.add_argument("--duration", type=float, default=30.0, help="seconds to hold them")
    args = parser.parse_args()
    host, _, port = args.target.rpartition(":")
    host = host.strip("[]")
    if host not in ("127.0.0.1", "::1", "localhost"):
        sys.exit("the target must be a loopback address: %s" % args.target)
    selector = selectors.DefaultSelector()
    held = []
    try:
        for _ in range(args.connections):
            sock = socket.create_connection((host, int(port)), timeout=10)
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ)
            held.append(sock)
    except OSError as e:
        sys.exit("cannot connect to %s: %s" % (args.target, e))
    print("holding %d" % len(held), file=sys.stderr, flush=True)
    closed = 0
    end = time.monotonic() + args.duration
    while closed < len(held):
        left = end - time.monotonic()
        if left <= 0:
            break
        for key, _ in selector.select(timeout=left):
            try:
                data = key.fileobj.recv(4096)
            except OSError:
                data = b""
            if not data:
                selector.unregister(key.fileobj)
                closed += 1
    for sock in held:
        sock.close()
    print(json.dumps({"connections": len(held), "closed_by_server": closed}))


if __name__ == "__main__":
    main()
