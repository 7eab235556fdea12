"""looplet.sim: deterministic simulation of networked asyncio programs.

Several hosts (servers, clients, a cluster) run in one process, on one thread, on a
simulated network whose latency, loss, partitions and crashes the test controls,
deterministically from a seed: the idea of Rust's turmoil, for asyncio programs that
run unchanged, since every asyncio socket call goes through the loop, and here the
loop is a `SimLoop`.

    import asyncio
    from looplet.sim import Simulation

    async def server():
        async def echo(reader, writer):
            writer.write(await reader.read(100))
            writer.close()
        srv = await asyncio.start_server(echo, None, 7)
        await srv.serve_forever()

    async def client():
        reader, writer = await asyncio.open_connection("server", 7)
        writer.write(b"hi")
        data = await reader.read()
        writer.close()
        return data

    sim = Simulation(seed=1)
    sim.host("server", server)
    sim.client("client", client)
    assert sim.run() == {"client": b"hi"}

The invariant owned here: importing looplet.sim changes nothing for looplet's own
loops; the simulation lives in `SimLoop`, a subclass, and in this package.
"""

from __future__ import annotations

from looplet.sim.errors import NotSimulatedError, SeedFailure, SimulationTimeout
from looplet.sim.loop import SimLoop
from looplet.sim.network import RETRANSMIT_DELAY, LinkConfig
from looplet.sim.simulation import Simulation, current_host, sweep

__all__ = [
    "RETRANSMIT_DELAY",
    "LinkConfig",
    "NotSimulatedError",
    "SeedFailure",
    "SimLoop",
    "Simulation",
    "SimulationTimeout",
    "current_host",
    "sweep",
]
