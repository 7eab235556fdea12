"""The simulated network's cost against the real one: one echo program, two networks.

Role: ``echo_cpu`` runs a streams echo (a server and one client in the same loop, 1 KiB
messages) either over real loopback TCP on the loop under test (``network="real"``,
every loop) or inside a `looplet.sim.Simulation` (``network="sim"``, looplet only:
other loops have no simulation, and their cell says ``unsupported``). Both report round
trips per second of the process's CPU time (`time.process_time`), not of the wall
clock: a simulation jumps over virtual time, so its wall time is not comparable with a
real network's, and CPU time is what a test suite pays per simulated round trip.

Invariant owned here: both networks run the same client and server code, the same
number of round trips and the same message, and each checks every reply's bytes.
"""

from __future__ import annotations

import asyncio
import importlib
import time
from typing import Any

from benchmarks.workloads.base import Context, Measurement, Unsupported

_PORT = 7


async def _serve_echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    finally:
        writer.close()


async def _exchanges(host: str, port: int, n: int, size: int) -> float:
    """``n`` request/reply round trips of ``size`` bytes; the CPU seconds they took."""
    message = bytes(range(256)) * (size // 256) + bytes(size % 256)
    reader, writer = await asyncio.open_connection(host, port)
    try:
        for _ in range(10):  # warm-up, not timed
            writer.write(message)
            await reader.readexactly(size)
        t0 = time.process_time()
        for _ in range(n):
            writer.write(message)
            if await reader.readexactly(size) != message:
                raise AssertionError("the echo came back changed")
        return time.process_time() - t0
    finally:
        writer.close()


def echo_cpu(ctx: Context, n: int, *, network: str, size: int = 1024) -> Measurement:
    """``n`` echo round trips of ``size`` bytes over ``network`` ("real" or "sim")."""
    if network == "real":
        return _echo_real(ctx, n, size)
    if network == "sim":
        return _echo_simulated(ctx, n, size)
    raise ValueError(f"network must be 'real' or 'sim', not {network!r}")


def _echo_real(ctx: Context, n: int, size: int) -> Measurement:
    async def main() -> float:
        ctx.note_loop()
        server = await asyncio.start_server(_serve_echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            return await _exchanges("127.0.0.1", port, n, size)

    return Measurement.rate(n, ctx.run(main), clock="process_time")


def _echo_simulated(ctx: Context, n: int, size: int) -> Measurement:
    probe = ctx.factory()
    try:
        if not hasattr(probe, "enable_timing"):  # not looplet: no simulation to run
            raise Unsupported(f"{type(probe).__name__} has no simulated network")
    finally:
        probe.close()
    # Imported by name: the harness type-checks on its own, not through looplet's code.
    sim_module: Any = importlib.import_module("looplet.sim")
    sim = sim_module.Simulation(seed=0)

    async def server() -> None:
        ctx.note_loop()
        srv = await asyncio.start_server(_serve_echo, None, _PORT)
        await srv.serve_forever()

    async def client() -> float:
        return await _exchanges("server", _PORT, n, size)

    sim.host("server", server)
    sim.client("client", client)
    return Measurement.rate(n, sim.run()["client"], clock="process_time")
