"""Stress run: ``python -m benchmarks.stress --seconds 10 --loops looplet,asyncio,uvloop``.

Role: put each loop under a mixed load for a bounded time and count what went wrong.
On the loop under test, all at once:

- a TCP echo server (a ``Protocol``, with flow control: reading pauses while writing is
  paused) and a keep-alive HTTP server (asyncio streams), both served to
  ``benchmarks.stress_client``, a separate process that is the same program, with the
  same seed, for every loop, and that times every request;
- timers: rounds of ``call_later``, 90% of them cancelled (half at once, half a tick
  later), the rest checked to fire, a cancelled one firing counted as an error;
- task churn: rounds of tasks created and gathered (results checked), and a task
  cancelled while it waits;
- ``call_soon_threadsafe`` from a thread: rounds of numbered callbacks, checked to
  arrive all and in order.

The background rounds are paced (a ``ROUND_INTERVAL`` pause after each), so every loop
is given about the same background work per second; the clients run closed-loop (one
request in flight per connection), so a faster loop serves more requests.

Each loop runs in a fresh ``python -m benchmarks.worker`` process (``runner.measure``:
own session, CPU pinning, a timeout that dumps the stacks, the loop check), one loop
after the other. Reported per loop: requests completed, errors (client side: connect,
reset, short reply, bad reply, timeout; server side: a failed check or handler
exception; anything that reached the loop's exception handler), latency p50/p99/max,
the server process's peak RSS (VmHWM) and its CPU time during the run, side by side,
and optionally as JSON.

Bounds: no request is started after ``--seconds`` or beyond ``--max-requests``; a reply
later than ``--request-timeout`` is an error; a worker still running ``--timeout``
seconds after that is killed and reported.

Invariant owned here: the exit status is 0 only if every loop that could be imported
ran with zero errors on the loop asked for (and at least one loop ran); otherwise 1
(2 for a usage error). A fault on the server side is a count in the report, never a
crash or a hang of the run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import resource
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, TextIO, cast

from benchmarks import cli, report, runner
from benchmarks.registry import Workload
from benchmarks.results import Sample
from benchmarks.workloads.base import ClientProcess, Context, Measurement

DEFAULT_LOOPS = "looplet,asyncio,uvloop"
DEFAULT_SECONDS = 10.0
# A cap on requests as well as time: the client keeps every latency, so this bounds
# its memory too (a million floats in a list, about 32 MB) and a run on a fast machine.
DEFAULT_MAX_REQUESTS = 1_000_000
DEFAULT_REQUEST_TIMEOUT = 10.0
# Seconds a worker may take beyond --seconds + --request-timeout (start-up, teardown)
# before it counts as hung; a normal one needs about one.
DEFAULT_TIMEOUT = 60.0
EXIT_ERRORS = 1
EXIT_USAGE = 2

OK = "ok"
ERRORS = "errors"
FAILED = "failed"
SKIPPED = "skipped"

# -- the workload, on the loop under test --------------------------------------------------

# Each background job waits 10 ms between rounds (a timer round also waits up to 10 ms
# for its kept timers): per second about 10,000 timers (90% cancelled), 4,000 tasks and
# 15,000 threadsafe callbacks; alone, that is 30% of a CPU on stock asyncio (21% on
# looplet, 16% on uvloop) on the 2-vCPU VM of docs/benchmarks.md. The rest serves requests.
ROUND_INTERVAL: float = 0.01
TIMERS_PER_ROUND: int = 200
TASKS_PER_ROUND: int = 50
THREADSAFE_PER_ROUND: int = 200
# The kept timers are due 0-10 ms ahead.
KEPT_TIMER_SPREAD: float = 0.01
# The cancelled timers are due 1-2 s ahead, so a cancelled one that runs is a loop bug,
# not a race with its deadline; they pile up in the timer heap as cancelled entries.
CANCELLED_TIMER_DELAY: float = 1.0
HTTP_HEAD: bytes = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n"
MAX_ERROR_SAMPLES: int = 10


class ServerStats:
    """What the server side did and what went wrong there."""

    def __init__(self) -> None:
        self.counters: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.error_samples: list[str] = []

    def error(self, where: str, what: object) -> None:
        self.errors[where] += 1
        if len(self.error_samples) < MAX_ERROR_SAMPLES:
            self.error_samples.append(f"{where}: {what}")

    def as_dict(self) -> dict[str, Any]:
        return {
            "errors": sum(self.errors.values()),
            "error_kinds": dict(self.errors),
            "error_samples": self.error_samples,
            "counters": dict(self.counters),
        }


class EchoProtocol(asyncio.Protocol):
    """Writes back what it receives; stops reading while its peer is not reading."""

    def __init__(self, stats: ServerStats, ctx: Context) -> None:
        self.stats = stats
        self.ctx = ctx

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not subclasses of asyncio's classes, only alike.
        self.transport = cast(asyncio.Transport, transport)
        self.stats.counters["echo_connections"] += 1
        self.ctx.note_loop()

    def data_received(self, data: bytes) -> None:
        self.stats.counters["echo_bytes"] += len(data)
        self.transport.write(data)

    def pause_writing(self) -> None:
        self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None:
            self.stats.error("echo", repr(exc))


async def serve_http(
    stats: ServerStats, ctx: Context, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """Keep-alive GETs: the body is ``ok <path>``, which the client checks."""
    ctx.note_loop()
    stats.counters["http_connections"] += 1
    try:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError as exc:
                if exc.partial:  # EOF between requests is the client closing: not an error
                    stats.error("http", f"connection closed in a request, after {len(exc.partial)} bytes")
                return
            parts = head.split(b"\r\n", 1)[0].split(b" ")
            if len(parts) != 3 or parts[0] != b"GET" or parts[2] != b"HTTP/1.1":
                stats.error("http", f"bad request line {head[:80]!r}")
                return
            body = b"ok " + parts[1]
            writer.write(HTTP_HEAD % len(body) + body)
            await writer.drain()
            stats.counters["http_requests"] += 1
    except Exception as exc:  # counted, and the connection closed: the server serves on
        stats.error("http", repr(exc))
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def _wait_round(stats: ServerStats, where: str, done: asyncio.Future[None], timeout: float, what: str) -> None:
    finished, _ = await asyncio.wait([done], timeout=timeout)
    if not finished:
        stats.error(where, f"{what} within {timeout} s")


async def _timer_round(stats: ServerStats, timeout: float) -> None:
    loop = asyncio.get_running_loop()
    counters = stats.counters
    done: asyncio.Future[None] = loop.create_future()
    kept = TIMERS_PER_ROUND // 10
    fired = 0

    def keep() -> None:
        nonlocal fired
        fired += 1
        counters["timers_fired"] += 1
        if fired == kept and not done.done():
            done.set_result(None)

    def cancelled() -> None:
        stats.error("timers", "a cancelled timer ran")

    later: list[asyncio.TimerHandle] = []
    for i in range(TIMERS_PER_ROUND):
        if i % 10 == 0:
            loop.call_later(KEPT_TIMER_SPREAD * i / TIMERS_PER_ROUND, keep)
            continue
        handle = loop.call_later(CANCELLED_TIMER_DELAY * (1 + i / TIMERS_PER_ROUND), cancelled)
        if i % 2:
            handle.cancel()
        else:
            later.append(handle)
    counters["timers_scheduled"] += TIMERS_PER_ROUND
    await asyncio.sleep(0)
    for handle in later:
        handle.cancel()
    counters["timers_cancelled"] += TIMERS_PER_ROUND - kept
    await _wait_round(stats, "timers", done, timeout, f"not all {kept} kept timers fired")


async def timer_rounds(stats: ServerStats, stop: asyncio.Event, timeout: float) -> None:
    while True:
        await _timer_round(stats, timeout)
        stats.counters["timer_rounds"] += 1
        if stop.is_set():
            return
        await asyncio.sleep(ROUND_INTERVAL)


async def _square(i: int) -> int:
    await asyncio.sleep(0)
    return i * i


async def task_rounds(stats: ServerStats, stop: asyncio.Event, timeout: float) -> None:
    loop = asyncio.get_running_loop()
    counters = stats.counters
    while True:
        results = await asyncio.gather(*(loop.create_task(_square(i)) for i in range(TASKS_PER_ROUND)))
        if results != [i * i for i in range(TASKS_PER_ROUND)]:
            stats.error("tasks", "gather returned wrong results")
        waiter = loop.create_task(asyncio.sleep(3600))
        await asyncio.sleep(0)
        waiter.cancel()
        await asyncio.wait([waiter], timeout=timeout)
        if not waiter.cancelled():
            stats.error("tasks", "a cancelled task did not end cancelled")
        counters["tasks_run"] += TASKS_PER_ROUND + 1
        counters["task_rounds"] += 1
        if stop.is_set():
            return
        await asyncio.sleep(ROUND_INTERVAL)


async def threadsafe_rounds(stats: ServerStats, stop: asyncio.Event, timeout: float) -> None:
    """A thread sends each round's numbered callbacks when told to; they must all arrive, in order."""
    loop = asyncio.get_running_loop()
    counters = stats.counters
    go = threading.Event()
    quit_ = False
    state = {"round": 0, "next": 0}
    done: asyncio.Future[None] = loop.create_future()

    def produce() -> None:
        while True:
            go.wait()
            go.clear()
            if quit_:
                return
            number = state["round"]
            for i in range(THREADSAFE_PER_ROUND):
                loop.call_soon_threadsafe(receive, number, i)

    def receive(number: int, i: int) -> None:
        if number != state["round"] or i != state["next"]:
            stats.error("threadsafe", f"callback {number}/{i} arrived when {state['round']}/{state['next']} was due")
            return
        state["next"] += 1
        counters["threadsafe_callbacks"] += 1
        if state["next"] == THREADSAFE_PER_ROUND:
            done.set_result(None)

    # A daemon: a producer stuck in a broken loop must not keep the worker alive.
    thread = threading.Thread(target=produce, name="stress-threadsafe", daemon=True)
    thread.start()
    try:
        while True:
            done = loop.create_future()
            state["round"] += 1
            state["next"] = 0
            go.set()
            await _wait_round(stats, "threadsafe", done, timeout, "not all callbacks arrived")
            counters["threadsafe_rounds"] += 1
            if stop.is_set():
                return
            await asyncio.sleep(ROUND_INTERVAL)
    finally:
        quit_ = True
        go.set()
        await loop.run_in_executor(None, thread.join, timeout)
        if thread.is_alive():
            stats.error("threadsafe", "the producer thread did not stop")


async def _guarded(stats: ServerStats, where: str, job: Coroutine[Any, Any, None], ctx: Context) -> None:
    ctx.note_loop()
    try:
        await job
    except Exception as exc:  # counted: the other jobs and the servers carry on
        stats.error(where, repr(exc))


def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def peak_rss_bytes() -> int:
    """The process's peak resident set: VmHWM, or ru_maxrss where there is no /proc."""
    kib = _status_kib("VmHWM")
    if kib is None:
        kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return kib * 1024


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _close_server(stats: ServerStats, server: asyncio.Server, timeout: float) -> None:
    server.close()
    try:
        await asyncio.wait_for(server.wait_closed(), timeout)
    except TimeoutError:
        stats.error("server", f"connections still open {timeout} s after the clients finished")


async def serve_mixed(
    ctx: Context,
    n: int,
    *,
    seconds: float,
    echo_conns: int,
    http_conns: int,
    request_timeout: float,
    reconnect_every: int,
    seed: int,
) -> Measurement:
    """The mixed workload, until the client has started ``n`` requests or run ``seconds``."""
    loop = asyncio.get_running_loop()
    stats = ServerStats()
    backlog = max(128, echo_conns + http_conns)
    echo_server = await loop.create_server(lambda: EchoProtocol(stats, ctx), "127.0.0.1", 0, backlog=backlog)
    http_server = await asyncio.start_server(functools.partial(serve_http, stats, ctx), "127.0.0.1", 0, backlog=backlog)
    stop = asyncio.Event()
    jobs = [
        loop.create_task(_guarded(stats, name, job(stats, stop, request_timeout), ctx))
        for name, job in (("timers", timer_rounds), ("tasks", task_rounds), ("threadsafe", threadsafe_rounds))
    ]
    argv = [sys.executable, "-m", "benchmarks.stress_client"]
    for flag, server in (("--echo", echo_server), ("--http", http_server)):
        host, port = server.sockets[0].getsockname()[:2]
        argv += [flag, f"{host}:{port}"]
    argv += ["--echo-conns", str(echo_conns), "--http-conns", str(http_conns), "--seconds", str(seconds)]
    argv += ["--max-requests", str(n), "--request-timeout", str(request_timeout)]
    argv += ["--reconnect-every", str(reconnect_every), "--seed", str(seed)]
    rss_before = (_status_kib("VmRSS") or 0) * 1024
    cpu0 = cpu_seconds()
    t0 = time.perf_counter()
    try:
        with ClientProcess(argv) as client:
            client_report = await client.result()
    finally:
        wall = time.perf_counter() - t0
        cpu = cpu_seconds() - cpu0
        stop.set()
        # Each job ends its round (bounded by request_timeout) and returns.
        _, pending = await asyncio.wait(jobs, timeout=2 * request_timeout)
        for job_task in pending:
            stats.error("background", f"{job_task!r} did not stop")
            job_task.cancel()
        await _close_server(stats, echo_server, request_timeout)
        await _close_server(stats, http_server, request_timeout)
    requests = int(client_report.get("requests", 0))
    details = {
        "client": client_report,
        "server": stats.as_dict(),
        "peak_rss_bytes": peak_rss_bytes(),
        "rss_before_bytes": rss_before,
        "cpu_seconds": cpu,
        "wall_seconds": wall,
    }
    return Measurement(requests / wall, requests, wall, details)


# -- the command -----------------------------------------------------------------------------

Measure = Callable[[Workload, str], Sample]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.stress",
        description="Mixed load on each event loop, each in a fresh process: errors, latency, peak RSS, CPU.",
    )
    parser.add_argument(
        "--loops",
        default=DEFAULT_LOOPS,
        help=f"comma-separated modules with new_event_loop() (default {DEFAULT_LOOPS})",
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=DEFAULT_SECONDS,
        help=f"no request is started after this long, per loop (default {DEFAULT_SECONDS:g})",
    )
    parser.add_argument(
        "--max-requests",
        type=int,
        default=DEFAULT_MAX_REQUESTS,
        help=f"and no more requests than this are started, per loop (default {DEFAULT_MAX_REQUESTS:,})",
    )
    parser.add_argument("--echo-conns", type=int, default=8, help="echo client connections (default 8)")
    parser.add_argument("--http-conns", type=int, default=8, help="keep-alive HTTP client connections (default 8)")
    parser.add_argument(
        "--reconnect-every",
        type=int,
        default=100,
        help="requests per client connection before it is reopened (default 100; 0: never)",
    )
    parser.add_argument(
        "--request-timeout",
        type=float,
        default=DEFAULT_REQUEST_TIMEOUT,
        help=f"seconds a reply or a background round may take (default {DEFAULT_REQUEST_TIMEOUT:g})",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        help=f"seconds a worker may overrun the run before it is killed as hung (default {DEFAULT_TIMEOUT:g})",
    )
    parser.add_argument(
        "--pin",
        choices=cli.PIN_MODES,
        default="shared",
        help="CPU placement, as in python -m benchmarks (default shared)",
    )
    parser.add_argument("--seed", type=int, default=0, help="the client's message sizes (the same for every loop)")
    parser.add_argument("--json", metavar="PATH", help="also write the report as JSON to PATH")
    return parser


def stress_workload(args: argparse.Namespace) -> Workload:
    params = {
        "seconds": args.seconds,
        "echo_conns": args.echo_conns,
        "http_conns": args.http_conns,
        "request_timeout": args.request_timeout,
        "reconnect_every": args.reconnect_every,
        "seed": args.seed,
    }
    return Workload(
        "stress", "other", "benchmarks.stress:serve_mixed", args.max_requests, args.max_requests, params=params
    )


def loop_result(sample: Sample) -> dict[str, Any]:
    """One loop's row of the report, from its worker's sample."""
    details = sample.details
    base = {"loop_classes": details.get("loop_classes", []), "loop_version": details.get("loop_version")}
    if not sample.ok:
        return {"status": FAILED, "error": sample.error, **base, "errors": None}
    client: dict[str, Any] = details.get("client") or {}
    server: dict[str, Any] = details.get("server") or {}
    loop_errors: list[str] = details.get("loop_errors") or []
    kinds: Counter[str] = Counter(client.get("error_kinds") or {})
    kinds.update({f"server {k}": v for k, v in (server.get("error_kinds") or {}).items()})
    if loop_errors:
        kinds["exception handler"] = len(loop_errors)
    samples = [*(client.get("error_samples") or []), *(server.get("error_samples") or [])]
    samples += [f"exception handler: {e}" for e in loop_errors]
    errors = sum(kinds.values())
    wall = float(details.get("wall_seconds") or 0.0)
    requests = int(client.get("requests", 0))
    return {
        "status": OK if errors == 0 else ERRORS,
        "error": None,
        **base,
        "requests": requests,
        "requests_per_second": requests / wall if wall > 0 else 0.0,
        "started": client.get("started"),
        "stopped_by": client.get("stopped_by"),
        "errors": errors,
        "error_kinds": dict(kinds),
        "error_samples": samples,
        "latency_ms": client.get("latency_ms") or {},
        "by_kind": client.get("by_kind") or {},
        "connections": client.get("connections"),
        "peak_rss_bytes": details.get("peak_rss_bytes"),
        "rss_before_bytes": details.get("rss_before_bytes"),
        "cpu_seconds": details.get("cpu_seconds"),
        "wall_seconds": wall,
        "server": server.get("counters") or {},
    }


def _num(value: Any, scale: float = 1.0, digits: str = ".3g") -> str:
    if not isinstance(value, int | float):
        return "-"
    return format(value * scale if scale != 1.0 else value, digits)


def _rows(result: dict[str, Any]) -> list[tuple[str, str]]:
    latency = result.get("latency_ms") or {}
    server = result.get("server") or {}
    wall = result.get("wall_seconds") or 0
    cpu = result.get("cpu_seconds")
    return [
        ("requests", _num(result.get("requests"), digits="d")),
        ("requests/s", report.format_value(result["requests_per_second"]) if "requests_per_second" in result else "-"),
        ("errors", _num(result.get("errors"), digits="d")),
        ("stopped by", str(result.get("stopped_by") or "-")),
        ("latency p50 (ms)", _num(latency.get("p50"))),
        ("latency p99 (ms)", _num(latency.get("p99"))),
        ("latency max (ms)", _num(latency.get("max"))),
        ("peak RSS (MiB)", _num(result.get("peak_rss_bytes"), 1 / 2**20, ".1f")),
        ("CPU time (s)", _num(cpu, digits=".2f")),
        ("CPU / wall", f"{cpu / wall:.0%}" if isinstance(cpu, float) and wall else "-"),
        ("connections", _num(result.get("connections"), digits="d")),
        ("timers fired / scheduled", _pair(server, "timers_fired", "timers_scheduled")),
        ("tasks run", _num(server.get("tasks_run"), digits="d")),
        ("threadsafe callbacks", _num(server.get("threadsafe_callbacks"), digits="d")),
    ]


def _pair(counters: dict[str, Any], a: str, b: str) -> str:
    return f"{counters[a]} / {counters[b]}" if a in counters and b in counters else "-"


def format_table(results: dict[str, dict[str, Any]]) -> str:
    loops = list(results)
    header = ["", *loops]
    rows = [["status", *(results[loop]["status"] for loop in loops)]]
    per_loop = {loop: dict(_rows(r)) for loop, r in results.items() if r["status"] in (OK, ERRORS)}
    for label, _ in _rows({}):
        rows.append([label, *(per_loop[loop][label] if loop in per_loop else "-" for loop in loops)])
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = []
    for row in [header, ["-" * w for w in widths], *rows]:
        cells = [row[0].ljust(widths[0]), *(c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True))]
        lines.append("| " + " | ".join(cells) + " |")
    lines[1] = "|" + "|".join("-" * (w + 2) if i == 0 else "-" * (w + 1) + ":" for i, w in enumerate(widths)) + "|"
    lines += [
        "",
        "Latency: per request, measured by the client process, send to whole reply. Peak RSS: VmHWM of the",
        "server process. CPU: the server process's user + system time while the clients ran.",
    ]
    for loop, result in results.items():
        if result["status"] == SKIPPED:
            lines.append(f"skipped: {loop} ({result['error']})")
        elif result["status"] == FAILED:
            lines.append(f"FAILED: {loop}: {report.summarize_error(result['error'] or '')}")
        elif result["status"] == ERRORS:
            kinds = ", ".join(f"{kind} {count}" for kind, count in sorted(result["error_kinds"].items()))
            lines.append(f"ERRORS on {loop}: {kinds}")
            lines += [f"  - {sample[:200]}" for sample in result["error_samples"][:5]]
    return "\n".join(lines)


def format_header(meta: dict[str, Any]) -> str:
    settings = meta["settings"]
    return report.format_header(
        meta,
        [
            f"--seconds {settings['seconds']:g} --max-requests {settings['max_requests']}",
            f"{settings['echo_conns']} echo + {settings['http_conns']} http connections",
            f"--pin {settings['pin']}",
            *(f"{name}={value}" for name, value in (meta.get("env") or {}).items()),
        ],
    )


def main(
    argv: Sequence[str] | None = None,
    *,
    measure: Measure | None = None,
    out: TextIO | None = None,
    log: TextIO | None = None,
) -> int:
    """Run the command; ``measure`` is replaceable for tests."""
    out = out or sys.stdout
    log = log or sys.stderr
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    loops = cli.split_names(args.loops)
    if not loops:
        parser.error("--loops names no loop")
    if not args.seconds > 0 or args.max_requests < 1 or args.request_timeout <= 0 or args.timeout <= 0:
        parser.error("--seconds, --max-requests, --request-timeout and --timeout must be positive")
    if args.echo_conns < 0 or args.http_conns < 0 or args.echo_conns + args.http_conns < 1:
        parser.error("--echo-conns and --http-conns must not be negative, nor both 0")
    if args.reconnect_every < 0:
        parser.error("--reconnect-every must not be negative")
    try:
        runner.pinning(args.pin)
    except ValueError as exc:
        parser.error(str(exc))
    workload = stress_workload(args)
    if measure is None:
        # The worker's own timeout covers the whole run; the harness kills it a little later.
        timeout = args.seconds + args.request_timeout + args.timeout
        measure = functools.partial(runner.measure, repetition=0, quick=False, timeout=timeout, pin=args.pin)

    meta = cli.machine_meta(argv)  # before the run: the source state is the one measured
    meta["command"] = " ".join(["python -m benchmarks.stress", *argv])
    meta["settings"] = {
        "seconds": args.seconds,
        "max_requests": args.max_requests,
        "echo_conns": args.echo_conns,
        "http_conns": args.http_conns,
        "reconnect_every": args.reconnect_every,
        "request_timeout": args.request_timeout,
        "pin": args.pin,
        "seed": args.seed,
    }
    results: dict[str, dict[str, Any]] = {}
    for loop in loops:
        reason = runner.unavailable(loop)
        if reason:
            print(f"skipping {loop}: {reason}", file=log, flush=True)
            results[loop] = {"status": SKIPPED, "error": reason}
            continue
        print(f"stress on {loop}: {args.seconds:g} s or {args.max_requests:,} requests...", file=log, flush=True)
        results[loop] = result = loop_result(measure(workload, loop))
        summary = result["status"] if result["status"] != ERRORS else f"{result['errors']} errors"
        print(f"stress on {loop}: {summary}", file=log, flush=True)
    meta["loop_versions"] = {loop: r["loop_version"] for loop, r in results.items() if r.get("loop_version")}
    ran = [r for r in results.values() if r["status"] != SKIPPED]
    ok = bool(ran) and all(r["status"] == OK for r in ran)
    print(format_header(meta), file=out)
    print("", file=out)
    print(format_table(results), file=out, flush=True)
    if not ran:
        print("no loop ran", file=out)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"meta": meta, "loops": loops, "results": results, "ok": ok}, handle, indent=2, default=str)
            handle.write("\n")
    return 0 if ok else EXIT_ERRORS


if __name__ == "__main__":
    try:
        status = main()
    except KeyboardInterrupt:
        # The worker running at the time has been killed with its process group (runner.py).
        print("interrupted", file=sys.stderr)
        status = 130
    raise SystemExit(status)
