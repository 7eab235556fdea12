"""Unchanged third-party code in the simulation: an aiohttp server and client.

aiohttp's server (AppRunner, TCPSite) goes through loop.create_server, and its client
connects as aiohappyeyeballs does: a fresh socket, loop.sock_connect, then
loop.create_connection(sock=...); both run on simulated hosts as they are, over
plain HTTP and over HTTPS. The server sees the client's simulated address, and a
kept-alive connection makes the second request one round trip instead of two.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest


def test_aiohttp_client_and_server_talk_over_the_simulated_network() -> None:
    pytest.importorskip("aiohttp", reason="aiohttp is not installed")
    import aiohttp
    from aiohttp import web

    from looplet.sim import Simulation

    async def server() -> None:
        async def hello(request: web.Request) -> web.Response:
            return web.json_response({"you": request.remote})

        app = web.Application()
        app.router.add_get("/", hello)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, None, 8080).start()
        try:
            await asyncio.get_running_loop().create_future()
        finally:
            await runner.cleanup()

    async def client() -> list[Any]:
        loop = asyncio.get_running_loop()
        answers = []
        async with aiohttp.ClientSession() as session:
            for _ in range(2):
                start = loop.time()
                async with session.get("http://server:8080/") as response:
                    answers.append((response.status, await response.json(), round(loop.time() - start, 6)))
        return answers

    sim = Simulation(latency=0.01)
    sim.host("server", server)
    sim.client("client", client)
    assert sim.run()["client"] == [(200, {"you": "10.0.0.2"}, 0.04), (200, {"you": "10.0.0.2"}, 0.02)]


def test_a_raw_http_request_reaches_an_aiohttp_application() -> None:
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


def test_aiohttp_over_https() -> None:
    pytest.importorskip("aiohttp", reason="aiohttp is not installed")
    trustme = pytest.importorskip("trustme", reason="trustme is not installed")
    import ssl

    import aiohttp
    from aiohttp import web

    from looplet.sim import Simulation

    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("server").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)

    async def server() -> None:
        async def hello(request: web.Request) -> web.Response:
            return web.json_response({"you": request.remote, "secure": request.secure})

        app = web.Application()
        app.router.add_get("/", hello)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, None, 443, ssl_context=server_context).start()
        try:
            await asyncio.get_running_loop().create_future()
        finally:
            await runner.cleanup()

    async def client() -> tuple[int, Any]:
        async with aiohttp.ClientSession() as session, session.get("https://server/", ssl=client_context) as response:
            return response.status, await response.json()

    sim = Simulation(latency=0.01)
    sim.host("server", server)
    sim.client("client", client)
    assert sim.run()["client"] == (200, {"you": "10.0.0.2", "secure": True})
