"""Real applications over loopback, on both loops: aiohttp server and client,
a uvicorn ASGI app queried with httpx (which runs on anyio), and a websockets
server and client."""

from __future__ import annotations

import asyncio
import socket
import warnings
from typing import Any

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_aiohttp_server_and_client(loop: asyncio.AbstractEventLoop) -> None:
    # Each test imports what it needs: a missing library skips only its own tests.
    aiohttp = pytest.importorskip("aiohttp")
    web = pytest.importorskip("aiohttp.web")

    async def hello(request: Any) -> Any:
        return web.json_response({"hello": request.match_info["name"], "n": int(request.query.get("n", 0))})

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/hello/{name}", hello)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        try:
            async with aiohttp.ClientSession() as session:
                for n in range(20):
                    async with session.get(f"http://127.0.0.1:{port}/hello/looplet?n={n}") as resp:
                        assert resp.status == 200
                        assert await resp.json() == {"hello": "looplet", "n": n}
        finally:
            await runner.cleanup()

    loop.run_until_complete(main())


async def asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = f"{scope['method']} {scope['path']}".encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body})


def test_uvicorn_app_answers_httpx(loop: asyncio.AbstractEventLoop) -> None:
    uvicorn = pytest.importorskip("uvicorn")
    httpx = pytest.importorskip("httpx")

    async def main() -> None:
        port = free_port()
        config = uvicorn.Config(asgi_app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
        server = uvicorn.Server(config)
        serving = asyncio.ensure_future(server.serve())
        while not server.started:
            assert not serving.done(), serving
            await asyncio.sleep(0.01)
        try:
            async with httpx.AsyncClient() as client:
                for path in ("/", "/a/b"):
                    resp = await client.get(f"http://127.0.0.1:{port}{path}")
                    assert resp.status_code == 200
                    assert resp.text == f"GET {path}"
        finally:
            server.should_exit = True
            await serving

    with warnings.catch_warnings():
        # uvicorn's websockets backend may import deprecated modules; not ours to judge.
        warnings.simplefilter("ignore", DeprecationWarning)
        loop.run_until_complete(main())


def test_websockets_echo(loop: asyncio.AbstractEventLoop) -> None:
    ws_client = pytest.importorskip("websockets.asyncio.client")
    ws_server = pytest.importorskip("websockets.asyncio.server")
    ws_connect, ws_serve = ws_client.connect, ws_server.serve

    async def echo(ws: Any) -> None:
        async for message in ws:
            await ws.send(message)

    async def main() -> None:
        async with ws_serve(echo, "127.0.0.1", 0, max_size=None) as server:
            port = next(iter(server.sockets)).getsockname()[1]
            async with ws_connect(f"ws://127.0.0.1:{port}", max_size=None) as ws:
                for n in range(20):
                    await ws.send(f"message {n}")
                    assert await ws.recv() == f"message {n}"
                # Bigger than any socket buffer: both directions go through flow control.
                blob = bytes(range(256)) * 8192
                await ws.send(blob)
                assert await ws.recv() == blob

    loop.run_until_complete(main())
