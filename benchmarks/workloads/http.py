"""HTTP/1.1 servers on the loop under test, driven by wrk from another process.

Role: measure a loop serving HTTP under external load, the way a deployed server is
measured: ``wrk`` (one thread, C keep-alive connections, ``--latency``) runs for a
fixed time against either of two servers on the loop under test, and its report gives
the requests per second and the 99th-percentile latency. The servers:

- ``protocol``: a plain ``asyncio.Protocol`` that parses just enough HTTP/1.1 (a
  request ends at its blank line, the connection stays open) and answers every
  request with the same fixed response (`netio.HttpProtocol`);
- ``aiohttp``: an ``aiohttp.web.Application`` whose one handler returns the same
  13-byte body: aiohttp's own parser, request objects and response writer on top.

The worker pins itself to one CPU and wrk to the other (the registry's ``pin="split"``):
a load generator on the server's CPU would take the server's cycles. Beside wrk's
numbers, the server's own CPU time (user + system, ``getrusage``) during the measured
run is divided by the requests served: on a machine shared with other work the wall
clock moves with whatever else runs, the CPU time a request costs much less.

Invariant owned here: a number is reported only from a wrk run that ended with no
socket error and no non-2xx response, served at least one request, and printed its
latency distribution; without wrk the workload fails and says so (there is no
fallback that would make a missing load generator look like a measurement).
"""

from __future__ import annotations

import asyncio
import re
import resource
import shutil
from collections.abc import Awaitable, Callable

from benchmarks.workloads.base import ClientProcess, Context, Measurement
from benchmarks.workloads.netio import HttpProtocol, parse_wrk

#: the body both servers answer with (the ``protocol`` server's fixed response has it too)
BODY: str = "Hello, world!"
# Seconds of unmeasured load before the measured run: the server's first allocations,
# aiohttp's lazily built routes and the kernel's buffer autotuning are not measured.
WARMUP_SECONDS: int = 1
WRK_MISSING: str = "wrk is not installed (apt-get install wrk): the http_wrk_* workloads have no other load generator"

_PERCENTILE = re.compile(r"^\s*(\d+(?:\.\d+)?)%\s+(\d+(?:\.\d+)?)(us|ms|s|m|h)\s*$")
_TIME_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}

Stop = Callable[[], Awaitable[None]]


def parse_wrk_latency(output: str) -> dict[float, float]:
    """wrk's ``--latency`` distribution: percentile -> seconds (50, 75, 90, 99)."""
    lines = output.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == "Latency Distribution")
    except StopIteration:
        raise RuntimeError(f"wrk printed no latency distribution (was --latency given?):\n{output}") from None
    percentiles: dict[float, float] = {}
    for line in lines[start + 1 :]:
        match = _PERCENTILE.match(line)
        if not match:
            break
        percentiles[float(match.group(1))] = float(match.group(2)) * _TIME_UNITS[match.group(3)]
    if 99.0 not in percentiles:
        raise RuntimeError(f"wrk's latency distribution has no 99% line:\n{output}")
    return percentiles


def wrk_command(wrk: str, address: str, connections: int, seconds: int) -> list[str]:
    return [wrk, "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", f"http://{address}/"]


async def _protocol_server() -> tuple[Stop, str]:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(HttpProtocol, "127.0.0.1", 0, backlog=128)
    host, port = server.sockets[0].getsockname()[:2]

    async def stop() -> None:
        server.close()
        await server.wait_closed()

    return stop, f"{host}:{port}"


async def _aiohttp_server() -> tuple[Stop, str]:
    # Imported here: the other workloads must not need aiohttp.
    from aiohttp import web

    async def hello(request: web.Request) -> web.Response:
        return web.Response(text=BODY)

    app = web.Application()
    app.router.add_get("/", hello)
    # No access log: formatting a log line per request would be measured, not the loop.
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=128)
    await site.start()
    host, port = runner.addresses[0][:2]
    return runner.cleanup, f"{host}:{port}"


SERVERS: dict[str, Callable[[], Awaitable[tuple[Stop, str]]]] = {
    "protocol": _protocol_server,
    "aiohttp": _aiohttp_server,
}


async def _wrk(wrk: str, address: str, connections: int, seconds: int) -> str:
    with ClientProcess(wrk_command(wrk, address, connections, seconds)) as client:
        return await client.output()


async def wrk_http(ctx: Context, n: int, *, server: str, connections: int) -> Measurement:
    """wrk against ``server`` for ``n`` seconds over ``connections`` keep-alive connections."""
    if server not in SERVERS:
        raise ValueError(f"unknown server {server!r}; known: {', '.join(SERVERS)}")
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError(WRK_MISSING)
    stop, address = await SERVERS[server]()
    try:
        if not ctx.quick:
            parse_wrk(await _wrk(wrk, address, connections, WARMUP_SECONDS))  # its errors count too
        before = _cpu_seconds()
        output = await _wrk(wrk, address, connections, n)
        cpu = _cpu_seconds() - before
    finally:
        await stop()
    requests, seconds = parse_wrk(output)
    if requests == 0:
        raise RuntimeError(f"wrk completed no request:\n{output}")
    latency = {f"p{p:g}_ms": s * 1e3 for p, s in parse_wrk_latency(output).items()}
    return Measurement.rate(
        requests,
        seconds,
        **latency,
        cpu_us_per_req=cpu / requests * 1e6,
        connections=connections,
        duration=n,
        server=server,
    )


def _cpu_seconds() -> float:
    """User + system CPU time of this process (the server: wrk is another process)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
