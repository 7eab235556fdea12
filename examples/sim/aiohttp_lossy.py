"""aiohttp's server and client, unchanged, across a lossy link.

A key-value service is an aiohttp `web.Application`; two clients use
`aiohttp.ClientSession` to store and read back values, each request with a 0.5 s
timeout and up to three attempts. The link from client c2 loses 30% of its packets:
TCP sends a lost segment again after 200 ms, so nothing is lost, but some of c2's
requests take longer than its timeout and are retried (PUT is idempotent here). Every
request is printed with the virtual time it finished at, and the output is the same,
byte for byte, every time the program runs with one seed.

    python examples/sim/aiohttp_lossy.py [seed]
"""

from __future__ import annotations

import asyncio
import sys

import aiohttp
from aiohttp import web

from looplet.sim import Simulation, current_host


def log(message: str) -> None:
    print(f"{asyncio.get_running_loop().time():7.3f}  {current_host():6}  {message}")


async def service() -> None:
    store: dict[str, str] = {}

    async def put(request: web.Request) -> web.Response:
        store[request.match_info["key"]] = await request.text()
        return web.Response(status=204)

    async def get(request: web.Request) -> web.Response:
        key = request.match_info["key"]
        if key not in store:
            raise web.HTTPNotFound()
        return web.Response(text=store[key])

    app = web.Application()
    app.router.add_put("/{key}", put)
    app.router.add_get("/{key}", get)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, None, 8080).start()
    try:
        await asyncio.get_running_loop().create_future()  # serve until the run ends
    finally:
        await runner.cleanup()


async def attempt(session: aiohttp.ClientSession, method: str, url: str, data: str | None) -> str:
    for tries in range(1, 4):
        try:
            async with asyncio.timeout(0.5):
                async with session.request(method, url, data=data) as response:
                    body = await response.text()
                    return f"{response.status} {body!r} (attempt {tries})"
        except TimeoutError:
            log(f"{method} {url}: no answer within 0.5 s")
    return "gave up after 3 attempts"


async def client(values: int) -> int:
    me = current_host()
    ok = 0
    async with aiohttp.ClientSession() as session:
        for i in range(values):
            url = f"http://kv:8080/{me}-{i}"
            log(f"PUT {url}: {await attempt(session, 'PUT', url, f'value {i}')}")
            answer = await attempt(session, "GET", url, None)
            log(f"GET {url}: {answer}")
            ok += answer.startswith(f"200 'value {i}'")
    return ok


def main(seed: int) -> None:
    sim = Simulation(seed, latency=(0.010, 0.030))
    sim.host("kv", service)
    for name in ("c1", "c2"):
        sim.client(name, lambda: client(4))
    sim.set_link("c2", "kv", loss=0.3)
    results = sim.run()
    print(f"values read back: c1 {results['c1']} of 4, c2 {results['c2']} of 4")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
