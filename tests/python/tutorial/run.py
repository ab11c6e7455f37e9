#!/usr/bin/env python3
"""Runs one of the tutorials' client programs (restored in this folder from
../shared/seeds) against a server of ours.

  run.py --port N [--host H] [--upload PATH] [--before FIRST.py] PROGRAM.py

The programs are as the tutorials wrote them, except that where they had a
host, a port or a file path written out, they use the names HOST, PORT and
UPLOAD_PATH, which this runner defines (each file's header says what it
changed). It runs PROGRAM with runpy, so it reads standard input and prints
exactly as when run by itself, and ends the same way (an exception such as
EOFError at the end of input is printed, exit status 1).

--before FIRST.py runs FIRST (the tutorials' HMAC client) first, on its own
socket, then hands that connected socket to PROGRAM: the tutorials check a
client with one program and talk to it with another, and never show the two
together. PROGRAM's socket.socket() returns the handed socket, and its
connect() is then a no-op.

The programs' datagram sockets hear the server alone: a datagram from
anyone else is skipped, where the programs would take it for the answer.
The port the OS gives such a socket may have been another test's a moment
ago, and datagrams sent to that one may still arrive.
"""

import argparse
import os
import runpy
import socket
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def handed_socket_factory(connected):
    """socket.socket replaced by a function that returns `connected`."""

    class Handed(socket.socket):
        def connect(self, address):
            pass

        def connect_ex(self, address):
            return 0

    handed = Handed(fileno=connected.detach())
    return lambda *args, **kwargs: handed


def server_only_sockets(server):
    """socket.socket replaced by a subclass whose datagram sockets skip
    datagrams from anyone but `server` (a set of (ip, port))."""

    class ServerOnly(socket.socket):
        def recvfrom(self, bufsize, *flags):
            while True:
                data, sender = super().recvfrom(bufsize, *flags)
                if self.type != socket.SOCK_DGRAM or sender[:2] in server:
                    return data, sender
                print("run.py: ignoring a datagram from %s:%d" % sender[:2], file=sys.stderr)

        def recv(self, bufsize, *flags):
            if self.type != socket.SOCK_DGRAM:
                return super().recv(bufsize, *flags)
            return self.recvfrom(bufsize, *flags)[0]

    return ServerOnly


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upload", default=None, help="the file the upload client sends")
    parser.add_argument("--before", default=None, help="a program whose connected socket PROGRAM uses")
    parser.add_argument("program")
    args = parser.parse_args()
    names = {"HOST": args.host, "PORT": args.port, "UPLOAD_PATH": args.upload}
    server = {(info[4][0], info[4][1]) for info in socket.getaddrinfo(args.host, args.port, type=socket.SOCK_DGRAM)}
    socket.socket = server_only_sockets(server)

    if args.before:
        first = runpy.run_path(os.path.join(HERE, args.before), init_globals=names, run_name="__main__")
        connected = [v for v in first.values() if isinstance(v, socket.socket)]
        if len(connected) != 1:
            sys.exit("run.py: %s left %d sockets, not one" % (args.before, len(connected)))
        socket.socket = handed_socket_factory(connected[0])

    sys.argv = [args.program]
    runpy.run_path(os.path.join(HERE, args.program), init_globals=names, run_name="__main__")


if __name__ == "__main__":
    main()
