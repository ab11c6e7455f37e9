#!/usr/bin/env python3
"""The tutorials' protocol in plain Python (standard library only), to
check the Rust crate against it from both sides.

A message is: struct.pack('i', len(header)), the header as JSON (a dict
whose "size" is the body length), then the body. The peer answers each
message with one whose header carries the body's SHA-256 and whose body
is the uppercase of what was sent.

  interop.py client PORT [KEY]   connect to a Rust server, send messages,
                                 check the replies (answer the HMAC
                                 challenge first when KEY is given, and
                                 read the verdict: exit 3 if refused)
  interop.py server [KEY]        serve one Rust client; prints the port
                                 (challenge it first when KEY is given)

The challenge (when a key is shared): the server sends 32 random bytes,
the client answers HMAC-SHA256(key, challenge), the server replies
#WELCOME# or #FAILURE# (then closes), as multiprocessing.connection does.
"""

import hashlib
import hmac
import json
import os
import socket
import struct
import sys

from netutil import recv_exact

TIMEOUT = 10
WELCOME = b"#WELCOME#"
FAILURE = b"#FAILURE#"


def send_message(conn, header, body):
    header = dict(header, size=len(body))
    raw = json.dumps(header).encode("utf-8")
    conn.sendall(struct.pack("i", len(raw)) + raw)
    conn.sendall(body)


def recv_message(conn):
    (length,) = struct.unpack("i", recv_exact(conn, 4))
    header = json.loads(recv_exact(conn, length).decode("utf-8"))
    body = recv_exact(conn, header["size"])
    return header, body


def check_reply(sent_body, header, body):
    assert header["sha256"] == hashlib.sha256(sent_body).hexdigest(), header
    assert body == sent_body.upper(), (body[:40], sent_body[:40])


def client(port, key=None):
    conn = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    if key is not None:
        challenge = recv_exact(conn, 32)
        conn.sendall(hmac.new(key.encode(), challenge, "sha256").digest())
        verdict = recv_exact(conn, len(WELCOME))
        if verdict == FAILURE:
            print("python client: the server refused the key")
            sys.exit(3)
        assert verdict == WELCOME, verdict
    bodies = [b"hello from python", b"", bytes(range(256)) * 400, "你好 sticky packets".encode()]
    for i, body in enumerate(bodies):
        send_message(conn, {"op": "echo", "n": i}, body)
    for i, body in enumerate(bodies):
        header, reply = recv_message(conn)
        assert header["n"] == i, header
        check_reply(body, header, reply)
    conn.close()
    print("python client: %d messages ok" % len(bodies))


def server(key=None):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(TIMEOUT)
    print(listener.getsockname()[1], flush=True)
    conn, _ = listener.accept()
    conn.settimeout(TIMEOUT)
    if key is not None:
        challenge = os.urandom(32)
        conn.sendall(challenge)
        answer = recv_exact(conn, 32)
        expected = hmac.new(key.encode(), challenge, "sha256").digest()
        if not hmac.compare_digest(answer, expected):
            conn.sendall(FAILURE)
            conn.close()
            print("python server: refused the key", flush=True)
            return
        conn.sendall(WELCOME)
    served = 0
    while True:
        try:
            header, body = recv_message(conn)
        except EOFError:
            break
        reply = {"n": header.get("n"), "sha256": hashlib.sha256(body).hexdigest()}
        send_message(conn, reply, body.upper())
        served += 1
    conn.close()
    print("python server: %d messages served" % served, flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "client":
        client(int(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else None)
    elif sys.argv[1] == "server":
        server(sys.argv[2] if len(sys.argv) > 2 else None)
    else:
        sys.exit(__doc__)
