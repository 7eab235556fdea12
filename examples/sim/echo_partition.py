"""An echo server and three clients; one client is cut off by a partition that heals.

The server and the clients are ordinary asyncio code (start_server, open_connection);
looplet.sim runs them as hosts on a simulated network. At t=2 s the test partitions
client c2 from the server, and repairs the link at t=8 s: c2's request waits at the
partition, its 3 s timeout fires, and after the repair its pending bytes arrive (TCP
retransmits; nothing is lost) and the next request goes through. The output is the
same, byte for byte, every time the program runs with one seed.

    python examples/sim/echo_partition.py [seed]
"""

from __future__ import annotations

import asyncio
import sys

from looplet.sim import Simulation, current_host


def log(message: str) -> None:
    print(f"{asyncio.get_running_loop().time():7.3f}  {current_host():6}  {message}")


async def echo_server() -> None:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")[0]
        log(f"connection from {peer}")
        while line := await reader.readline():
            writer.write(line)
            await writer.drain()
        log(f"{peer} hung up")
        writer.close()

    server = await asyncio.start_server(echo, None, 7)
    await server.serve_forever()


async def client(requests: int) -> int:
    reader, writer = await asyncio.open_connection("server", 7)
    answered = 0
    for n in range(requests):
        writer.write(f"request {n}\n".encode())
        try:
            reply = await asyncio.wait_for(reader.readline(), 3)
        except TimeoutError:
            log(f"request {n}: no answer within 3 s")
            # The reply may still come, late: read it before the next request.
            reply = await reader.readline()
            log(f"request {n}: late answer {reply.decode().strip()!r}")
        else:
            log(f"request {n}: answer {reply.decode().strip()!r}")
            answered += 1
        await asyncio.sleep(1)
    writer.close()
    await writer.wait_closed()
    return answered


def main(seed: int) -> None:
    sim = Simulation(seed, latency=(0.005, 0.050))
    sim.host("server", echo_server)
    for name in ("c1", "c2", "c3"):
        sim.client(name, lambda: client(10))

    async def fault() -> None:
        await asyncio.sleep(2)
        log("partition c2 <-> server")
        sim.partition("c2", "server")
        await asyncio.sleep(6)
        log("repair c2 <-> server")
        sim.repair("c2", "server")

    sim.client("chaos", fault)
    results = sim.run()
    print(f"answered in time: {results['c1']} {results['c2']} {results['c3']} (of 10 each)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
