#!/usr/bin/env python3
"""A TLS client in plain Python (the standard library's ssl module, that
is OpenSSL), for tests/tls_interop.rs: it connects to the crate's TLS
uppercase echo, sends lines, and checks that each comes back uppercased.

  tls_client.py PORT CAFILE [--cert FILE --key FILE] [--tls1.2]
                [--name NAME] [--truncate]

  --cert, --key   present this client certificate (mutual TLS)
  --tls1.2        offer nothing newer than TLS 1.2
  --name          the name the server's certificate must carry
                  (default: localhost)
  --truncate      leave without TLS's close_notify: close the TCP
                  connection under the session

Prints one JSON object and exits 0 when every reply was right:
  {"ok": true, "version": "TLSv1.3", "cipher": "...", "replies": 3}
or, exiting 1, where and why it failed (`reason` is OpenSSL's, such as
CERTIFICATE_VERIFY_FAILED):
  {"ok": false, "stage": "handshake" | "exchange", "error": "...",
   "reason": "..."}
"""

import argparse
import json
import socket
import ssl
import sys

from netutil import recv_exact

TIMEOUT = 10
LINES = [b"hello over tls\n", b"from python's ssl module\n", b"x" * 20000 + b"\n"]


def failed(stage, error):
    print(json.dumps({
        "ok": False,
        "stage": stage,
        "error": str(error),
        "reason": getattr(error, "reason", None) or type(error).__name__,
    }))
    sys.exit(1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("cafile")
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--tls1.2", dest="tls12", action="store_true")
    parser.add_argument("--name", default="localhost")
    parser.add_argument("--truncate", action="store_true")
    args = parser.parse_args()

    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=args.cafile)
    if args.tls12:
        context.maximum_version = ssl.TLSVersion.TLSv1_2
    if args.cert:
        context.load_cert_chain(args.cert, args.key)

    raw = socket.create_connection(("127.0.0.1", args.port), timeout=TIMEOUT)
    try:
        conn = context.wrap_socket(raw, server_hostname=args.name)
    except (ssl.SSLError, OSError) as error:
        raw.close()
        failed("handshake", error)

    try:
        for line in LINES:
            conn.sendall(line)
            reply = recv_exact(conn, len(line))
            if reply != line.upper():
                raise ValueError("wrong reply %r to %r" % (reply[:40], line[:40]))
    except (ssl.SSLError, OSError, EOFError, ValueError) as error:
        conn.close()
        failed("exchange", error)

    version, cipher = conn.version(), conn.cipher()[0]
    if args.truncate:
        # The TCP connection goes, the TLS session is never closed.
        conn.shutdown(socket.SHUT_RDWR)
        conn.close()
    else:
        # close_notify, then the server's.
        conn.unwrap().close()
    print(json.dumps({"ok": True, "version": version, "cipher": cipher, "replies": len(LINES)}))


if __name__ == "__main__":
    main()
