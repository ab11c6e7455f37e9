#!/usr/bin/env python3
"""file_server's protocol in plain Python (standard library only), to
check the wire format the manual documents (src/manual/05_messages.md)
from outside the crate.

A message is: struct.pack('!I', len(header)), the header as JSON (an
object whose "size" is the body length), the body, and, when the header
lists "trailer": ["sha256"], a trailer framed the same way: {"sha256": ...}.

  file_transfer.py put PORT PATH NAME trailer|first
      upload PATH as NAME, the checksum in a trailer or in the header
      (the form clients that predate trailers send); prints the reply's
      sha256
  file_transfer.py get PORT NAME OUT trailer|first
      download NAME into the file OUT, asking for the checksum in a
      trailer or not asking (an old client); checks it, prints it and the
      form the server used
"""

import hashlib
import json
import socket
import struct
import sys

from netutil import recv_exact

TIMEOUT = 10
CHUNK = 1 << 20


def send_frame(conn, obj):
    raw = json.dumps(obj).encode("utf-8")
    conn.sendall(struct.pack("!I", len(raw)) + raw)


def recv_frame(conn):
    (length,) = struct.unpack("!I", recv_exact(conn, 4, CHUNK))
    return json.loads(recv_exact(conn, length, CHUNK).decode("utf-8"))


def reply(conn):
    header = recv_frame(conn)
    if header.get("status") != "ok":
        raise SystemExit("the server said: %s" % header.get("error"))
    return header


def put(port, path, name, form):
    with open(path, "rb") as f:
        data = f.read()
    digest = hashlib.sha256(data).hexdigest()
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as conn:
        if form == "trailer":
            send_frame(conn, {"op": "put", "name": name, "size": len(data), "trailer": ["sha256"]})
            conn.sendall(data)
            send_frame(conn, {"sha256": digest})
        else:
            send_frame(conn, {"op": "put", "name": name, "size": len(data), "sha256": digest})
            conn.sendall(data)
        header = reply(conn)
    assert header["sha256"] == digest, header
    print(digest)


def get(port, name, out, form):
    request = {"op": "get", "name": name}
    if form == "trailer":
        request["checksum"] = "trailer"
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as conn:
        send_frame(conn, dict(request, size=0))
        header = reply(conn)
        body = recv_exact(conn, header["size"], CHUNK)
        if header.get("trailer") == ["sha256"]:
            assert "sha256" not in header, header
            expected = recv_frame(conn)["sha256"]
            used = "trailer"
        else:
            expected = header["sha256"]
            used = "first"
    digest = hashlib.sha256(body).hexdigest()
    assert digest == expected, (digest, expected)
    with open(out, "wb") as f:
        f.write(body)
    print(digest, used)


def main(args):
    if len(args) == 5 and args[0] == "put":
        put(int(args[1]), args[2], args[3], args[4])
    elif len(args) == 5 and args[0] == "get":
        get(int(args[1]), args[2], args[3], args[4])
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
