#!/usr/bin/env python3
"""Pipelined requests, read with Python's http.client.

    http_pipelining.py PORT

Sends, in one write, GET /, HEAD /, GET /missing, POST / with a body and
GET / again, then reads the five responses in order with
http.client.HTTPResponse (which has no pipelining of its own: the
responses are read one after another from one shared buffered reader).
Prints one line per response: "STATUS BODY" (the body as Python's repr).
Exits 1 on a socket error or a malformed response.
"""
import http.client
import socket
import sys


class SharedReader:
    """The connection's one buffered reader, lent to each HTTPResponse:
    a reader of its own would read ahead into the next response. Closing
    it is left to the end."""

    def __init__(self, reader):
        self.reader = reader

    def makefile(self, *args, **kwargs):
        return self

    def __getattr__(self, name):
        return getattr(self.reader, name)

    def close(self):
        pass


def main():
    port = int(sys.argv[1])
    requests = [
        ("GET", "/", b""),
        ("HEAD", "/", b""),
        ("GET", "/missing", b""),
        ("POST", "/", b"a body of some bytes"),
        ("GET", "/", b""),
    ]
    batch = b""
    for method, path, body in requests:
        head = "%s %s HTTP/1.1\r\nHost: localhost\r\nUser-Agent: http.client pipelining\r\n" % (method, path)
        if body:
            head += "Content-Length: %d\r\n" % len(body)
        batch += head.encode() + b"\r\n" + body
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(batch)
        reader = SharedReader(sock.makefile("rb"))
        for method, _, _ in requests:
            response = http.client.HTTPResponse(reader, method=method)
            response.begin()
            print(response.status, repr(response.read()))


if __name__ == "__main__":
    try:
        main()
    except (OSError, http.client.HTTPException) as e:
        print("http_pipelining.py: %s" % e, file=sys.stderr)
        sys.exit(1)
