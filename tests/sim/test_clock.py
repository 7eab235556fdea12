"""The real clock in a simulation (looplet/sim/intercept.py).

While `Simulation.run()` runs, the time module's clock readers read the virtual clock
(the wall clock from the simulation's epoch), so a program's timestamps are the same
for one seed; `time.sleep()` is refused by name; everything is put back when the run
ends, whether it returned or raised, and other threads keep the real clock.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import looplet
from looplet.sim import NotSimulatedError, Simulation
from looplet.sim.intercept import CLOCK_READERS, SOCKET_METHODS

ORIGINALS = {name: getattr(time, name) for name in (*CLOCK_READERS, "sleep", "gmtime", "strftime")}


def assert_restored() -> None:
    for name, function in ORIGINALS.items():
        assert getattr(time, name) is function, name
    for name in SOCKET_METHODS:
        assert name not in socket.socket.__dict__, name


async def readings() -> dict[str, Any]:
    await asyncio.sleep(1.5)
    return {name: getattr(time, name)() for name in CLOCK_READERS} | {
        "loop": asyncio.get_running_loop().time(),
        "gmtime": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        "ctime": time.ctime(),
    }


def read_clocks(seed: int, **settings: Any) -> dict[str, Any]:
    sim = Simulation(seed, latency=(0.001, 0.1), **settings)

    async def server() -> None:
        srv = await asyncio.start_server(lambda r, w: w.close(), None, 7)
        await srv.serve_forever()

    async def client() -> dict[str, Any]:
        _reader, writer = await asyncio.open_connection("server", 7)  # latency drawn from the seed
        writer.close()
        return await readings()

    sim.host("server", server)
    sim.client("client", client)
    result: dict[str, Any] = sim.run()["client"]
    return result


def test_every_clock_reads_the_virtual_clock_and_is_the_same_for_one_seed() -> None:
    first = read_clocks(3)
    assert first == read_clocks(3)
    now = first["loop"]
    assert 1.5 < now < 2.0
    assert first["monotonic"] == first["perf_counter"] == now
    assert first["time"] == 1_735_689_600.0 + now
    assert first["monotonic_ns"] == first["perf_counter_ns"] == round(now * 1e9)
    assert first["time_ns"] == 1_735_689_600_000_000_000 + round(now * 1e9)
    assert first["gmtime"] == "2025-01-01 00:00:01"
    assert read_clocks(4)["loop"] != now  # another seed, other latencies
    assert_restored()


def test_the_epoch_is_a_setting() -> None:
    assert read_clocks(3, epoch=0)["time"] == read_clocks(3)["loop"]
    with pytest.raises(ValueError, match="epoch"):
        Simulation(epoch=-1)


def test_time_sleep_is_refused_by_name_and_works_again_after_the_run() -> None:
    async def client() -> str:
        with pytest.raises(NotSimulatedError) as info:
            time.sleep(0.001)
        return str(info.value)

    sim = Simulation()
    sim.client("client", client)
    message = sim.run()["client"]
    assert message.startswith("time.sleep() is not available in a simulation: ")
    assert "asyncio.sleep()" in message
    time.sleep(0)
    assert_restored()


def test_the_clock_is_restored_when_the_run_raises() -> None:
    async def client() -> None:
        assert time.time() == 1_735_689_600.0
        raise KeyError("boom")

    sim = Simulation()
    sim.client("client", client)
    with pytest.raises(KeyError):
        sim.run()
    assert_restored()
    assert time.time() > 1_735_689_600.0 + 3600  # this machine's clock is past 2025-01-01 01:00


def test_other_threads_keep_the_real_clock() -> None:
    async def client() -> tuple[float, float]:
        seen: list[float] = []
        thread = threading.Thread(target=lambda: seen.append(time.time()))
        thread.start()
        thread.join()
        return time.time(), seen[0]

    sim = Simulation(epoch=0)
    sim.client("client", client)
    virtual, real = sim.run()["client"]
    assert virtual == 0.0
    assert real > 1e9


def test_simulations_on_two_threads_each_read_their_own_clock() -> None:
    results: dict[str, Any] = {}
    started = threading.Barrier(2)

    def simulate(name: str, epoch: float) -> None:
        async def client() -> list[float]:
            seen = []
            for _ in range(50):
                seen.append(time.time())
                await asyncio.sleep(1)
            return seen

        sim = Simulation(epoch=epoch)
        sim.client("client", client)
        started.wait()
        results[name] = sim.run()["client"]

    thread = threading.Thread(target=simulate, args=("other", 1000.0))
    thread.start()
    simulate("this", 2000.0)
    thread.join()
    assert results == {"other": [1000.0 + i for i in range(50)], "this": [2000.0 + i for i in range(50)]}
    assert_restored()


def test_a_simulation_run_inside_a_host_is_refused_and_the_outer_clock_stays() -> None:
    async def client() -> tuple[str, float]:
        inner = Simulation(epoch=5.0)
        inner.client("inner", lambda: asyncio.sleep(0))
        with pytest.raises(RuntimeError) as info:
            inner.run()
        return str(info.value), time.time()

    sim = Simulation(epoch=100.0)
    sim.client("client", client)
    message, now = sim.run()["client"]
    assert message == "Simulation.run() cannot be called while another loop is running"
    assert now == 100.0
    assert_restored()


def test_log_records_carry_virtual_timestamps(caplog: pytest.LogCaptureFixture) -> None:
    async def client() -> None:
        await asyncio.sleep(2.5)
        logging.getLogger("looplet.test").warning("tick")

    sim = Simulation()
    sim.client("client", client)
    with caplog.at_level(logging.WARNING, logger="looplet.test"):
        sim.run()
    [record] = [r for r in caplog.records if r.name == "looplet.test"]
    assert record.created == 1_735_689_602.5


def test_the_trace_file_of_a_program_reading_clocks_is_the_same_for_one_seed(tmp_path: Path) -> None:
    def traced(path: Path) -> Any:
        with looplet.trace(path):
            result = read_clocks(7)
        return result, path.read_bytes()

    one, trace_one = traced(tmp_path / "one.json")
    two, trace_two = traced(tmp_path / "two.json")
    assert one == two
    assert trace_one == trace_two
    assert len(json.loads(trace_one)["traceEvents"]) > 10


def test_aiohttp_dates_its_responses_from_the_virtual_clock() -> None:
    pytest.importorskip("aiohttp", reason="aiohttp is not installed")
    import aiohttp
    from aiohttp import web

    async def server() -> None:
        async def hello(request: web.Request) -> web.Response:
            return web.Response(text="hi")

        app = web.Application()
        app.router.add_get("/", hello)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, None, 8080).start()
        try:
            await asyncio.Future()
        finally:
            await runner.cleanup()

    async def client() -> tuple[int, str, str]:
        await asyncio.sleep(61)
        async with aiohttp.ClientSession() as session, session.get("http://server:8080/") as response:
            return response.status, await response.text(), response.headers["Date"]

    sim = Simulation(latency=0.01)
    sim.host("server", server)
    sim.client("client", client)
    assert sim.run()["client"] == (200, "hi", "Wed, 01 Jan 2025 00:01:01 GMT")
    assert_restored()
