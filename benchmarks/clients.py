"""The client processes: ``python -m benchmarks.clients KIND ...``, plain Python, no asyncio.

Role: generate load against a server that runs on the loop under test, from another
process, with the same code and arguments whatever that loop is. Kinds:

- ``exchange``: C connections (TCP or Unix), each sending a request and waiting for a
  reply of known length, N exchanges in all, after a warm-up; one ``selectors`` loop
  drives every connection, so 1 and 16 clients are the same program. Echo sends S
  bytes and expects them back; ``--http`` sends a keep-alive GET and learns the fixed
  response length from the first, parsed, response.
- ``udp``: one socket, N datagram round trips.
- ``drain``: one connection read until EOF (the sendfile workload).
- ``hold``: C idle connections kept open until stdin closes (the memory workload).

Invariant owned here: a client times only the exchanges themselves (connections made
and warmed up before the clock starts), checks every byte count, and reports one
JSON line last on stdout; any mismatch or error is a non-zero exit, never a number.
"""

from __future__ import annotations

import argparse
import json
import selectors
import socket
import sys
import time
from collections.abc import Sequence
from typing import Any

# Exchanges per connection before the clock starts: connection set-up, the server's
# first allocations and the kernel's buffer autotuning are not what is measured.
WARMUP: int = 20
# One receive buffer, reused: the client must not be the one allocating per message.
RECV_CHUNK: int = 256 * 1024
# A reply that never comes is a failure, not a hang (the harness has its own timeout).
SOCKET_TIMEOUT: float = 30.0
HTTP_REQUEST: bytes = b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: keep-alive\r\n\r\n"


def _connect(family: str, address: str) -> socket.socket:
    if family == "unix":
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(address)
    else:
        host, port = address.rsplit(":", 1)
        sock = socket.create_connection((host, int(port)))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.settimeout(SOCKET_TIMEOUT)
    return sock


class _Conn:
    """One connection's place in its current exchange."""

    __slots__ = ("left", "pending", "received", "sock")

    def __init__(self, sock: socket.socket, exchanges: int) -> None:
        self.sock = sock
        #: exchanges still to start on this connection
        self.left = exchanges
        #: the unsent rest of the current request
        self.pending = memoryview(b"")
        #: bytes of the current reply received so far
        self.received = 0


def run_exchanges(socks: Sequence[socket.socket], request: bytes, reply_len: int, per_conn: int) -> int:
    """Drive ``per_conn`` request/reply exchanges on every socket; return the total."""
    sel = selectors.DefaultSelector()
    view = memoryview(bytearray(RECV_CHUNK))
    conns = [_Conn(sock, per_conn) for sock in socks]

    def start(conn: _Conn) -> None:
        conn.left -= 1
        conn.received = 0
        try:
            sent = conn.sock.send(request)
        except BlockingIOError:
            sent = 0
        conn.pending = memoryview(request)[sent:]
        # Read while writing: an echo server answers before a large request is all sent.
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if conn.pending else 0)
        sel.modify(conn.sock, events, conn)

    for conn in conns:
        conn.sock.setblocking(False)
        sel.register(conn.sock, selectors.EVENT_READ, conn)
        start(conn)
    active = len(conns)
    done = 0
    while active:
        for key, events in sel.select(SOCKET_TIMEOUT) or _timeout():
            conn = key.data
            if events & selectors.EVENT_WRITE and conn.pending:
                sent = conn.sock.send(conn.pending)
                conn.pending = conn.pending[sent:]
                if not conn.pending:
                    sel.modify(conn.sock, selectors.EVENT_READ, conn)
            if not events & selectors.EVENT_READ:
                continue
            try:
                n = conn.sock.recv_into(view)
            except BlockingIOError:
                continue
            if n == 0:
                raise ConnectionError("server closed the connection mid-exchange")
            conn.received += n
            if conn.received < reply_len:
                continue
            if conn.received > reply_len or conn.pending:
                raise ValueError(f"reply of {conn.received} bytes, expected {reply_len}")
            done += 1
            if conn.left:
                start(conn)
            else:
                sel.unregister(conn.sock)
                active -= 1
    sel.close()
    for sock in socks:
        sock.setblocking(True)
        sock.settimeout(SOCKET_TIMEOUT)
    return done


def _timeout() -> list[Any]:
    raise TimeoutError(f"no reply within {SOCKET_TIMEOUT} s")


def http_response_length(sock: socket.socket) -> int:
    """One blocking keep-alive GET, parsed: the server's (fixed) response length."""
    sock.sendall(HTTP_REQUEST)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(RECV_CHUNK)
        if not chunk:
            raise ConnectionError("server closed the connection before answering")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    if not lines[0].startswith("HTTP/1.1 200"):
        raise ValueError(f"unexpected status line {lines[0]!r}")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    length = int(headers["content-length"])
    while len(body) < length:
        body += sock.recv(RECV_CHUNK)
    if len(body) != length:
        raise ValueError("response longer than its Content-Length")
    return len(head) + 4 + length


def exchange(args: argparse.Namespace) -> dict[str, Any]:
    socks = [_connect(args.family, args.address) for _ in range(args.conns)]
    try:
        if args.http:
            request = HTTP_REQUEST
            reply_len = http_response_length(socks[0])
        else:
            request = b"x" * args.size
            reply_len = args.size
        run_exchanges(socks, request, reply_len, WARMUP)
        per_conn = max(1, args.count // args.conns)
        t0 = time.perf_counter()
        done = run_exchanges(socks, request, reply_len, per_conn)
        seconds = time.perf_counter() - t0
    finally:
        for sock in socks:
            sock.close()
    return {"ops": done, "seconds": seconds, "conns": args.conns, "reply_bytes": reply_len}


def udp(args: argparse.Namespace) -> dict[str, Any]:
    host, port = args.address.rsplit(":", 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(SOCKET_TIMEOUT)
        sock.connect((host, int(port)))
        payload = b"x" * args.size

        def round_trips(count: int) -> None:
            for _ in range(count):
                sock.send(payload)
                if len(sock.recv(args.size + 1)) != args.size:
                    raise ValueError("datagram echoed with another size")

        round_trips(WARMUP)
        t0 = time.perf_counter()
        round_trips(args.count)
        seconds = time.perf_counter() - t0
    return {"ops": args.count, "seconds": seconds}


def drain(args: argparse.Namespace) -> dict[str, Any]:
    view = memoryview(bytearray(RECV_CHUNK))
    with _connect("tcp", args.address) as sock:
        got = 0
        t0 = time.perf_counter()
        while n := sock.recv_into(view):
            got += n
        seconds = time.perf_counter() - t0
    if got != args.expect:
        raise ValueError(f"received {got} bytes, expected {args.expect}")
    return {"bytes": got, "seconds": seconds}


def hold(args: argparse.Namespace) -> dict[str, Any]:
    socks = [_connect("tcp", args.address) for _ in range(args.conns)]
    try:
        sys.stdin.buffer.read()  # until the worker has measured and closes our stdin
    finally:
        for sock in socks:
            sock.close()
    return {"conns": len(socks)}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.clients", description=__doc__.split("\n")[0])
    kinds = parser.add_subparsers(dest="kind", required=True)
    p = kinds.add_parser("exchange", help="request/reply exchanges over C connections")
    p.add_argument("--family", choices=["tcp", "unix"], default="tcp")
    p.add_argument("--address", required=True, help="host:port, or a Unix socket path")
    p.add_argument("--conns", type=int, default=1)
    p.add_argument("--size", type=int, default=1024, help="echo message size in bytes")
    p.add_argument("--count", type=int, required=True, help="exchanges in all, over every connection")
    p.add_argument("--http", action="store_true", help="keep-alive HTTP GETs instead of echo messages")
    p.set_defaults(run=exchange)
    p = kinds.add_parser("udp", help="datagram round trips")
    p.add_argument("--address", required=True)
    p.add_argument("--size", type=int, default=1024)
    p.add_argument("--count", type=int, required=True)
    p.set_defaults(run=udp)
    p = kinds.add_parser("drain", help="read one connection until EOF")
    p.add_argument("--address", required=True)
    p.add_argument("--expect", type=int, required=True, help="bytes the server must send")
    p.set_defaults(run=drain)
    p = kinds.add_parser("hold", help="keep C idle connections open until stdin closes")
    p.add_argument("--address", required=True)
    p.add_argument("--conns", type=int, required=True)
    p.set_defaults(run=hold)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    report = args.run(args)
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
