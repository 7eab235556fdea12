"""The stress load generator: ``python -m benchmarks.stress_client --echo HOST:PORT --http HOST:PORT``.

Role: drive the mixed workload's two servers (``benchmarks.stress``) from another
process, with the same program, seed and arguments whatever loop serves: E echo
connections sending messages of mixed sizes (64 B to 64 KiB, content checked byte for
byte) and H keep-alive HTTP connections sending GETs whose bodies name the request.
Each connection has one request in flight; it is closed and reopened every R requests,
so accept and close are exercised too. One ``selectors`` loop drives them all.

Bounds: no request is started after ``--seconds`` or once ``--max-requests`` have been
started; a connect (blocking, on loopback) or a reply that takes longer than
``--request-timeout`` is an error, and a connection slot gives up after 3 failed
connects in a row; so the client ends within about two request timeouts of its
deadline, whatever the server does.

Invariant owned here: every request started ends as exactly one completed request (its
latency recorded) or one error of one kind (reset, short reply, bad reply, timeout,
exception), and every failed connect is one ``connect`` error; the client always prints
one JSON report last on stdout and exits 0, whatever the server did, so a server fault
is counted, never a client crash.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import selectors
import socket
import struct
import time
import traceback
from collections import Counter
from collections.abc import Sequence
from typing import Any

# Echo message sizes: small ones that fit one segment, and 16 and 64 KiB ones that
# need several reads and writes on both sides (and can fill a socket buffer).
ECHO_SIZES: tuple[int, ...] = (64, 512, 1024, 4096, 16 * 1024, 64 * 1024)
RECV_CHUNK: int = 256 * 1024
# Consecutive failed connects after which a connection slot gives up: a server that
# is gone must end the run with errors, not spin reconnecting until the deadline.
MAX_CONNECT_FAILURES: int = 3
# Errors kept as text (the counts are complete; these say what the errors were).
MAX_ERROR_SAMPLES: int = 10
ERROR_KINDS: tuple[str, ...] = ("connect", "reset", "short_reply", "bad_reply", "timeout", "exception")


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """The nearest-rank ``p``-th percentile of already sorted values (0 when empty)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def latency_summary(seconds: Sequence[float]) -> dict[str, float]:
    """p50/p99/max/mean in milliseconds."""
    ordered = sorted(seconds)
    return {
        "p50": percentile(ordered, 50) * 1e3,
        "p99": percentile(ordered, 99) * 1e3,
        "max": (ordered[-1] if ordered else 0.0) * 1e3,
        "mean": (sum(ordered) / len(ordered) if ordered else 0.0) * 1e3,
    }


def echo_payload(slot: int, seq: int, size: int) -> bytes:
    """A message that names its connection slot and sequence number throughout."""
    unit = struct.pack(">HI", slot, seq) + b"-stress-"
    return (unit * (size // len(unit) + 1))[:size]


def http_request(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: stress\r\nConnection: keep-alive\r\n\r\n".encode()


def http_body(path: str) -> bytes:
    """The body the stress server must send for ``path`` (see benchmarks.stress)."""
    return b"ok " + path.encode()


class BadReply(Exception):
    """The reply arrived but is not the one the request asked for."""


def parse_http_response(buffer: bytes | bytearray) -> bytes | None:
    """The body of the one complete response in ``buffer`` (None: not complete yet).

    Raises:
        BadReply: not a 200 response with a Content-Length, or bytes after it.
    """
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None
    lines = bytes(buffer[:end]).decode("latin-1").split("\r\n")
    if not lines[0].startswith("HTTP/1.1 200 "):
        raise BadReply(f"status line {lines[0]!r}")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:] if ": " in line)
    if "content-length" not in headers:
        raise BadReply("no Content-Length")
    total = end + 4 + int(headers["content-length"])
    if len(buffer) < total:
        return None
    if len(buffer) > total:
        raise BadReply(f"{len(buffer) - total} bytes after the response")
    return bytes(buffer[end + 4 :])


class Slot:
    """One client connection and its one request in flight."""

    __slots__ = (
        "connect_failures",
        "expected",
        "inbuf",
        "index",
        "kind",
        "on_conn",
        "pending",
        "rng",
        "sent_at",
        "seq",
        "sock",
    )

    def __init__(self, kind: str, index: int, seed: int) -> None:
        #: "echo" or "http"
        self.kind = kind
        self.index = index
        # Seeded per slot: every loop gets the same sequence of message sizes.
        self.rng = random.Random(seed * 1_000_003 + index)
        self.sock: socket.socket | None = None
        #: requests sent on the current connection
        self.on_conn = 0
        #: requests sent by this slot in all
        self.seq = 0
        self.connect_failures = 0
        #: the unsent rest of the request
        self.pending = memoryview(b"")
        self.inbuf = bytearray()
        #: the exact reply (echo) or body (http) the request must get
        self.expected = b""
        self.sent_at = 0.0


class StressClient:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.sel = selectors.DefaultSelector()
        self.view = memoryview(bytearray(RECV_CHUNK))
        self.latencies: dict[str, list[float]] = {"echo": [], "http": []}
        self.errors: Counter[str] = Counter()
        self.error_samples: list[str] = []
        self.started = 0
        self.connections = 0
        self.stopped_by = ""
        self.t0 = time.perf_counter()
        self.deadline = self.t0 + args.seconds
        self.addresses = {"echo": args.echo, "http": args.http}

    # -- bookkeeping --------------------------------------------------------------------

    def may_start(self) -> bool:
        if self.started >= self.args.max_requests:
            self.stopped_by = self.stopped_by or "requests"
            return False
        if time.perf_counter() >= self.deadline:
            self.stopped_by = self.stopped_by or "time"
            return False
        return True

    def error(self, slot: Slot, kind: str, what: object) -> None:
        self.errors[kind] += 1
        if len(self.error_samples) < MAX_ERROR_SAMPLES:
            self.error_samples.append(f"{slot.kind}[{slot.index}] request {slot.seq}: {kind}: {what}")
        self.disconnect(slot)

    def disconnect(self, slot: Slot) -> None:
        if slot.sock is not None:
            self.sel.unregister(slot.sock)
            slot.sock.close()
            slot.sock = None

    # -- requests -----------------------------------------------------------------------

    def connect(self, slot: Slot) -> bool:
        host, port = self.addresses[slot.kind].rsplit(":", 1)
        try:
            sock = socket.create_connection((host, int(port)), timeout=self.args.request_timeout)
        except OSError as exc:
            slot.connect_failures += 1
            self.errors["connect"] += 1
            if len(self.error_samples) < MAX_ERROR_SAMPLES:
                self.error_samples.append(f"{slot.kind}[{slot.index}]: connect: {exc!r}")
            return False
        slot.connect_failures = 0
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        slot.sock = sock
        slot.on_conn = 0
        self.connections += 1
        self.sel.register(sock, selectors.EVENT_READ, slot)
        return True

    def next_request(self, slot: Slot) -> None:
        """Start the slot's next request, (re)connecting first if due; or retire the slot."""
        reconnect_every = self.args.reconnect_every
        if slot.sock is not None and reconnect_every and slot.on_conn >= reconnect_every:
            self.disconnect(slot)
        # A loop, not recursion: a server that resets every connection at once makes
        # each new request fail as soon as it is sent.
        while self.may_start():
            if slot.sock is None and not self.connect(slot):
                if slot.connect_failures >= MAX_CONNECT_FAILURES:
                    return  # the slot retires; its failed connects are counted
                continue
            if self.send_request(slot):
                return
        self.disconnect(slot)

    def send_request(self, slot: Slot) -> bool:
        """Send (the start of) the next request; False if that failed (counted)."""
        sock = slot.sock
        assert sock is not None
        slot.seq += 1
        slot.on_conn += 1
        self.started += 1
        if slot.kind == "echo":
            request = echo_payload(slot.index, slot.seq, slot.rng.choice(ECHO_SIZES))
            slot.expected = request
        else:
            path = f"/{slot.index}/{slot.seq}"
            request = http_request(path)
            slot.expected = http_body(path)
        slot.inbuf.clear()
        slot.sent_at = time.perf_counter()
        try:
            sent = sock.send(request)
        except BlockingIOError:
            sent = 0
        except OSError as exc:
            self.error(slot, classify(exc), repr(exc))
            return False
        slot.pending = memoryview(request)[sent:]
        # Read while writing: the echo server answers before a large request is all sent.
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if slot.pending else 0)
        self.sel.modify(sock, events, slot)
        return True

    def on_ready(self, slot: Slot, events: int) -> None:
        sock = slot.sock
        assert sock is not None
        try:
            if events & selectors.EVENT_WRITE and slot.pending:
                sent = sock.send(slot.pending)
                slot.pending = slot.pending[sent:]
                if not slot.pending:
                    self.sel.modify(sock, selectors.EVENT_READ, slot)
            if not events & selectors.EVENT_READ:
                return
            n = sock.recv_into(self.view)
        except BlockingIOError:
            return
        except OSError as exc:
            self.error(slot, classify(exc), repr(exc))
            self.next_request(slot)
            return
        if n == 0:
            got = len(slot.inbuf)
            self.error(slot, "short_reply", f"connection closed after {got} bytes of the reply")
            self.next_request(slot)
            return
        slot.inbuf += self.view[:n]
        try:
            done = self.reply_complete(slot)
        except BadReply as exc:
            self.error(slot, "bad_reply", exc)
            self.next_request(slot)
            return
        if done:
            self.latencies[slot.kind].append(time.perf_counter() - slot.sent_at)
            self.next_request(slot)

    def reply_complete(self, slot: Slot) -> bool:
        if slot.kind == "echo":
            if len(slot.inbuf) < len(slot.expected):
                return False
            if slot.pending or slot.inbuf != slot.expected:
                raise BadReply(f"echo of {len(slot.inbuf)} bytes differs from the {len(slot.expected)} sent")
            return True
        body = parse_http_response(slot.inbuf)
        if body is None:
            return False
        if slot.pending or body != slot.expected:
            raise BadReply(f"body {body[:60]!r}, expected {slot.expected!r}")
        return True

    def expire(self, now: float) -> float | None:
        """Fail the requests past their timeout; the time until the next one would be."""
        timeout = self.args.request_timeout
        soonest: float | None = None
        for key in list(self.sel.get_map().values()):
            slot: Slot = key.data
            if slot.sent_at + timeout <= now:
                self.error(slot, "timeout", f"no complete reply after {timeout} s")
                self.next_request(slot)
                if slot.sock is None:
                    continue  # retired
            # For the request just started too: a second silent reply must time out as well.
            due = slot.sent_at + timeout
            if soonest is None or due < soonest:
                soonest = due
        return None if soonest is None else max(0.0, soonest - now)

    def run(self) -> dict[str, Any]:
        slots = [Slot("echo", i, self.args.seed) for i in range(self.args.echo_conns)]
        slots += [Slot("http", i, self.args.seed) for i in range(self.args.http_conns)]
        for slot in slots:
            self.next_request(slot)
        while True:
            wait = self.expire(time.perf_counter())
            # Checked after expire(), which may have retired the last connections: a
            # select() on nothing, with no timeout, would never return.
            if not self.sel.get_map():
                break
            for key, events in self.sel.select(wait):
                if key.data.sock is not None:  # not failed by an earlier event of this batch
                    self.on_ready(key.data, events)
        self.sel.close()
        elapsed = time.perf_counter() - self.t0
        every = self.latencies["echo"] + self.latencies["http"]
        return {
            "requests": len(every),
            "started": self.started,
            "errors": sum(self.errors.values()),
            "error_kinds": dict(self.errors),
            "error_samples": self.error_samples,
            "latency_ms": latency_summary(every),
            "by_kind": {
                kind: {"requests": len(values), "latency_ms": latency_summary(values)}
                for kind, values in self.latencies.items()
            },
            "connections": self.connections,
            "seconds": elapsed,
            "stopped_by": self.stopped_by or "requests",
        }


def classify(exc: OSError) -> str:
    if isinstance(exc, ConnectionResetError | BrokenPipeError | ConnectionAbortedError):
        return "reset"
    if isinstance(exc, TimeoutError):
        return "timeout"
    return "exception"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.stress_client", description=__doc__.split("\n")[0])
    parser.add_argument("--echo", required=True, help="host:port of the echo server")
    parser.add_argument("--http", required=True, help="host:port of the HTTP server")
    parser.add_argument("--echo-conns", type=int, default=8)
    parser.add_argument("--http-conns", type=int, default=8)
    parser.add_argument("--seconds", type=float, required=True, help="no request is started after this")
    parser.add_argument("--max-requests", type=int, required=True, help="no more requests than this are started")
    parser.add_argument("--request-timeout", type=float, default=10.0, help="seconds a reply may take")
    parser.add_argument("--reconnect-every", type=int, default=100, help="requests per connection (0: never reopen)")
    parser.add_argument("--seed", type=int, default=0)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        report = StressClient(args).run()
    except Exception:  # a client bug still ends in a report, an error the run cannot miss
        trace = traceback.format_exc()
        report = {"requests": 0, "errors": 1, "error_kinds": {"exception": 1}, "error_samples": [trace]}
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
