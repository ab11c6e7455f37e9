"""What the Python test clients share: reading an exact number of bytes.

The clients are run as `python3 tests/python/NAME.py`, so this sibling
module is found on the script's own directory.
"""


def recv_exact(conn, n, chunk=None):
    """The next `n` bytes from `conn` (a socket, plain or TLS), read at
    most `chunk` at a time; EOFError if the peer closes before."""
    data = bytearray()
    while len(data) < n:
        want = n - len(data) if chunk is None else min(n - len(data), chunk)
        got = conn.recv(want)
        if not got:
            raise EOFError("the peer closed after %d of %d bytes" % (len(data), n))
        data += got
    return bytes(data)
