"""Unchanged third-party servers in the simulation: an aiohttp web application.

aiohttp's server (AppRunner, TCPSite) goes through loop.create_server, so it runs on
a simulated host as it is, and answers a client on another host; the client sees
its own simulated address in `request.remote`. (aiohttp's client opens its sockets
itself, through aiohappyeyeballs and loop.sock_connect, which the simulation refuses.)
"""

from __future__ import annotations

import asyncio

import pytest


def test_an_aiohttp_application_serves_a_simulated_client() -> None:
    pytest.importorskip("aiohttp", reason="aiohttp is not installed")
    from aiohttp import web

    from looplet.sim import Simulation

    async def server() -> None:
        async def hello(request: web.Request) -> web.Response:
            return web.Response(text=f"hello {request.remote}")

        app = web.Application()
        app.router.add_get("/", hello)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, None, 8080).start()
        try:
            await asyncio.get_running_loop().create_future()
        finally:
            await runner.cleanup()

    async def client() -> tuple[bytes, bytes]:
        reader, writer = await asyncio.open_connection("server", 8080)
        writer.write(b"GET / HTTP/1.1\r\nHost: server\r\nConnection: close\r\n\r\n")
        response = await reader.read()
        writer.close()
        head, _, body = response.partition(b"\r\n\r\n")
        return head.split(b"\r\n")[0], body

    sim = Simulation(latency=0.01)
    sim.host("server", server)
    sim.client("client", client)
    assert sim.run()["client"] == (b"HTTP/1.1 200 OK", b"hello 10.0.0.2")
