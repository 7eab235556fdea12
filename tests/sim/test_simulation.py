"""Simulation (looplet/sim/simulation.py): declaring hosts, running them, and one seed giving one run.

`run()` returns what the clients returned, by name, or raises what one raised (or a
host's main); a run whose clients never finish ends at `duration` with
SimulationTimeout. Hosts get 10.0.0.1, 10.0.0.2, ... in the order they were
declared, and code knows which host it runs on, in tasks and callbacks it starts
too. Two runs with one seed record the same events at the same virtual times and
write the same trace file; seeds differ where latency is drawn from them; `sweep`
names the first failing seed.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

import looplet
from looplet.sim import SeedFailure, Simulation, SimulationTimeout, current_host, sweep


async def echo_server() -> None:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(100):
            writer.write(data)
        writer.close()

    server = await asyncio.start_server(echo, None, 7)
    await server.serve_forever()


def test_run_returns_each_client_result_by_name_in_declared_order() -> None:
    async def client(word: bytes) -> bytes:
        reader, writer = await asyncio.open_connection("server", 7)
        writer.write(word)
        data = await reader.readexactly(len(word))
        writer.close()
        return data

    sim = Simulation()
    sim.host("server", echo_server)
    sim.client("b", lambda: client(b"bee"))
    sim.client("a", lambda: client(b"ay"))
    result = sim.run()
    assert result == {"b": b"bee", "a": b"ay"}
    assert list(result) == ["b", "a"]


def test_run_raises_what_a_client_raised() -> None:
    async def client() -> None:
        await asyncio.sleep(5)
        raise KeyError("from the client")

    sim = Simulation()
    sim.client("c", client)
    with pytest.raises(KeyError, match="from the client"):
        sim.run()


def test_run_raises_what_a_host_main_raised() -> None:
    async def server() -> None:
        await asyncio.sleep(1)
        raise ValueError("server bug")

    async def client() -> None:
        await asyncio.sleep(10)

    sim = Simulation()
    sim.host("server", server)
    sim.client("c", client)
    with pytest.raises(ValueError, match="server bug"):
        sim.run()


def test_clients_that_never_finish_end_at_the_duration() -> None:
    async def client() -> None:
        await asyncio.get_running_loop().create_future()

    sim = Simulation(duration=50.0)
    sim.client("stuck", client)
    with pytest.raises(SimulationTimeout, match=r"50\.0 virtual seconds.*\['stuck'\]"):
        sim.run()
    assert sim.time() == 50.0


def test_a_simulation_needs_a_client_and_runs_once() -> None:
    sim = Simulation()
    sim.host("server", echo_server)
    with pytest.raises(ValueError, match="needs a client"):
        sim.run()

    async def client() -> int:
        return 1

    sim.client("c", client)
    assert sim.run() == {"c": 1}
    with pytest.raises(RuntimeError, match="runs once"):
        sim.run()


def test_host_names_are_checked() -> None:
    async def main() -> None:
        pass

    sim = Simulation()
    sim.host("a", main)
    for bad in ("a", "localhost", "10.0.0.9", ""):
        with pytest.raises(ValueError):
            sim.host(bad, main)
    with pytest.raises(TypeError):
        sim.host("b", 42)  # type: ignore[arg-type]


def test_hosts_get_addresses_in_declared_order_and_resolve_by_name() -> None:
    seen: dict[str, Any] = {}

    async def client() -> None:
        loop = asyncio.get_running_loop()
        seen["server"] = await loop.getaddrinfo("server", 80, type=0)
        seen["self"] = (await loop.getaddrinfo("client", 80))[0][4]

    sim = Simulation()
    assert sim.host("server", echo_server) == "10.0.0.1"
    assert sim.client("client", client) == "10.0.0.2"
    assert sim.lookup("server") == "10.0.0.1"
    sim.run()
    kinds = [(info[1], info[4]) for info in seen["server"]]
    import socket

    assert kinds == [
        (socket.SOCK_STREAM, ("10.0.0.1", 80)),
        (socket.SOCK_DGRAM, ("10.0.0.1", 80)),
        (socket.SOCK_RAW, ("10.0.0.1", 80)),
    ]
    assert seen["self"] == ("10.0.0.2", 80)


def test_code_knows_its_host_in_tasks_and_callbacks_it_starts() -> None:
    seen: list[tuple[str, str | None]] = []

    async def server() -> None:
        loop = asyncio.get_running_loop()
        loop.call_soon(lambda: seen.append(("callback", current_host())))
        loop.call_later(1, lambda: seen.append(("timer", current_host())))

        async def child() -> None:
            seen.append(("task", current_host()))

        await asyncio.create_task(child())
        await asyncio.sleep(2)

    async def client() -> None:
        seen.append(("client", current_host()))
        await asyncio.sleep(3)

    sim = Simulation()
    sim.host("server", server)
    sim.client("client", client)
    sim.run()
    assert sorted(seen) == [("callback", "server"), ("client", "client"), ("task", "server"), ("timer", "server")]
    assert current_host() is None


def chatter(seed: int, latency: Any = (0.001, 0.01), **kwargs: Any) -> list[tuple[float, str | None, str]]:
    """Three clients talking to an echo server; every step recorded with its time."""
    log: list[tuple[float, str | None, str]] = []

    def record(event: str) -> None:
        log.append((asyncio.get_running_loop().time(), current_host(), event))

    async def server() -> None:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while data := await reader.read(100):
                record(f"got {data!r}")
                writer.write(data.upper())
            writer.close()

        srv = await asyncio.start_server(handle, None, 7)
        await srv.serve_forever()

    async def client(n: int) -> None:
        reader, writer = await asyncio.open_connection("server", 7)
        record("connected")
        for i in range(3):
            writer.write(f"c{n}m{i}".encode())
            await writer.drain()
            record(f"echo {await reader.readexactly(4)!r}")
        writer.close()
        await writer.wait_closed()
        record("closed")

    sim = Simulation(seed, latency=latency, **kwargs)
    sim.host("server", server)
    for n in range(3):
        sim.client(f"c{n}", lambda n=n: client(n))
    sim.run()
    return log


def test_one_seed_gives_one_run() -> None:
    first = chatter(7)
    assert len(first) == 3 * 5 + 9
    assert chatter(7) == first


def test_seeds_differ_when_latency_is_drawn_from_them() -> None:
    runs = {tuple(chatter(seed)) for seed in range(4)}
    assert len(runs) > 1


def test_with_a_fixed_latency_seeds_differ_only_in_order_within_a_tick() -> None:
    # The times at which things happen are the same; which host goes first at one
    # time is the loop's shuffle, decided by the seed.
    times = {tuple(sorted(t for t, _, _ in chatter(seed, latency=0.001))) for seed in range(4)}
    assert len(times) == 1


def test_the_trace_file_is_the_same_for_one_seed(tmp_path: Path) -> None:
    paths = [tmp_path / "one.json", tmp_path / "two.json", tmp_path / "other.json"]
    for path, seed in zip(paths, [3, 3, 4], strict=True):
        with looplet.trace(path):
            chatter(seed)
    one, two, other = (path.read_bytes() for path in paths)
    assert one == two
    assert one != other
    events = json.loads(one)["traceEvents"]
    assert any(e["name"] == "chatter.<locals>.client" for e in events)


def test_the_network_log_is_the_same_for_one_seed() -> None:
    def logged(seed: int) -> list[Any]:
        async def client() -> None:
            reader, writer = await asyncio.open_connection("server", 7)
            writer.write(b"x" * 10)
            await reader.readexactly(10)
            writer.close()

        sim = Simulation(seed, latency=(0.001, 0.02), loss=0.3, log=True)
        sim.host("server", echo_server)
        sim.client("client", client)
        sim.run()
        return sim.network_log

    first = logged(11)
    assert ("sent" in {entry[1] for entry in first}) and ("retransmitted" in {entry[1] for entry in first})
    assert logged(11) == first
    assert logged(12) != first


def test_network_log_needs_log_true() -> None:
    with pytest.raises(RuntimeError, match="log=True"):
        _ = Simulation().network_log


def test_sweep_names_the_first_failing_seed() -> None:
    tried: list[int] = []

    def check(seed: int) -> None:
        tried.append(seed)
        assert seed % 5 != 3, "bad seed"

    with pytest.raises(SeedFailure, match="seed 3 fails: AssertionError: bad seed") as info:
        sweep(check, range(10))
    assert info.value.seed == 3
    assert isinstance(info.value.__cause__, AssertionError)
    assert tried == [0, 1, 2, 3]
    sweep(check, [0, 1, 2])


# -- crash and bounce --------------------------------------------------------------


def crash_scenario(client: Any, server: Any = echo_server, **kwargs: Any) -> Any:
    sim = Simulation(**kwargs)
    sim.host("server", server)
    sim.client("client", lambda: client(sim))
    return sim.run()["client"]


def test_a_crash_closes_connections_as_the_kernel_does_and_connects_are_refused() -> None:
    async def client(sim: Simulation) -> list[Any]:
        reader, writer = await asyncio.open_connection("server", 7)
        writer.write(b"hi")
        await reader.readexactly(2)
        sim.crash("server")
        seen: list[Any] = [await reader.read(), asyncio.get_running_loop().time()]
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection("server", 7)
        writer.close()
        return seen

    # Everything was read, so the dying process's kernel sends a FIN: EOF, a latency later.
    assert crash_scenario(client, latency=0.01) == [b"", pytest.approx(0.05)]


def test_a_crash_with_unread_data_resets_the_peer() -> None:
    async def server() -> None:
        class Deaf(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                transport.pause_reading()  # type: ignore[attr-defined]

        srv = await asyncio.get_running_loop().create_server(Deaf, None, 7)
        await srv.serve_forever()

    async def client(sim: Simulation) -> None:
        reader, writer = await asyncio.open_connection("server", 7)
        writer.write(b"never read")
        await asyncio.sleep(1)
        sim.crash("server")
        with pytest.raises(ConnectionResetError):
            await reader.read()
        writer.close()

    crash_scenario(client, server)


def test_a_crash_cancels_tasks_and_timers_and_the_dying_code_is_off_the_network() -> None:
    seen: list[Any] = []

    async def server() -> None:
        loop = asyncio.get_running_loop()
        loop.call_later(10, seen.append, "timer fired")

        async def background() -> None:
            try:
                await asyncio.sleep(100)
            finally:
                seen.append("background unwound")
                try:
                    await asyncio.open_connection("client", 1)
                except OSError as exc:
                    seen.append(exc.errno)

        task = asyncio.create_task(background())
        await asyncio.sleep(100)
        await task

    async def client(sim: Simulation) -> None:
        await asyncio.sleep(1)
        sim.crash("server")
        await asyncio.sleep(20)

    crash_scenario(client, server)
    import errno

    assert seen == ["background unwound", errno.ENETDOWN]


def test_bounce_starts_the_software_again_at_the_same_address() -> None:
    starts: list[float] = []

    async def server() -> None:
        starts.append(asyncio.get_running_loop().time())
        await echo_server()

    async def client(sim: Simulation) -> list[Any]:
        reader, writer = await asyncio.open_connection("server", 7)
        writer.write(b"1")
        await reader.readexactly(1)
        sim.crash("server")
        assert await reader.read() == b""
        writer.close()
        with pytest.raises(RuntimeError, match="'server' is not running"):
            sim.crash("server")
        await asyncio.sleep(5)
        sim.bounce("server")
        await asyncio.sleep(0.1)
        reader, writer = await asyncio.open_connection("server", 7)
        writer.write(b"again")
        got = await reader.readexactly(5)
        peer = writer.get_extra_info("peername")
        writer.close()
        return [got, peer]

    assert crash_scenario(client, server) == [b"again", ("10.0.0.1", 7)]
    assert starts == [0.0, pytest.approx(5.005)]


def test_bounce_of_a_running_host_crashes_it_first() -> None:
    async def client(sim: Simulation) -> bytes:
        reader, writer = await asyncio.open_connection("server", 7)
        writer.write(b"1")
        await reader.readexactly(1)
        sim.bounce("server")
        data = await reader.read()
        writer.close()
        await asyncio.sleep(0.1)
        reader, writer = await asyncio.open_connection("server", 7)
        writer.close()
        return data

    assert crash_scenario(client) == b""


def test_a_connection_the_server_had_not_accepted_yet_is_reset_by_its_crash() -> None:
    async def client(sim: Simulation) -> None:
        # connect() returns when the SYN-ACK arrives; the server's kernel queues the
        # connection for accept() only when the last ACK reaches it, a latency later.
        reader, writer = await asyncio.open_connection("server", 7)
        sim.crash("server")
        with pytest.raises(ConnectionResetError):
            await reader.read()
        writer.close()

    crash_scenario(client)


def test_crash_and_bounce_act_on_a_running_simulation_only() -> None:
    sim = Simulation()
    sim.host("server", echo_server)
    with pytest.raises(RuntimeError, match="running simulation"):
        sim.crash("server")
    with pytest.raises(KeyError):
        sim.bounce("nobody")


def test_programs_drawing_from_the_random_module_draw_the_same_for_one_seed() -> None:
    import random

    def draws(seed: int) -> list[float]:
        async def client() -> list[float]:
            return [random.random() for _ in range(3)]

        sim = Simulation(seed)
        sim.client("client", client)
        return sim.run()["client"]

    random.seed(99)
    before = random.getstate()
    assert draws(1) == draws(1)
    assert draws(1) != draws(2)
    assert random.getstate() == before


def test_one_seed_gives_one_trace_in_separate_processes(tmp_path: Path) -> None:
    # A fresh interpreter each time: string hashing, object addresses and task
    # counters all differ between the two, and the trace does not.
    import os
    import subprocess
    import sys

    code = (
        "import sys, looplet\n"
        "sys.path.insert(0, sys.argv[2])\n"
        "from test_simulation import chatter\n"
        "with looplet.trace(sys.argv[1]):\n"
        "    chatter(5)\n"
    )
    repo = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(repo), str(repo / "tests")]))
    env.pop("PYTHONHASHSEED", None)
    traces = []
    for name in ("a.json", "b.json"):
        subprocess.run(
            [sys.executable, "-c", code, str(tmp_path / name), str(Path(__file__).parent)],
            env=env,
            check=True,
            timeout=120,
        )
        traces.append((tmp_path / name).read_bytes())
    assert traces[0] == traces[1]
    assert len(json.loads(traces[0])["traceEvents"]) > 100


def test_a_crash_reaches_a_connection_whose_reset_waits_behind_unread_data() -> None:
    lost: list[Any] = []

    class Paused(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            assert isinstance(transport, asyncio.Transport)
            transport.pause_reading()
            transport.write(b"unread by the other side")

    class ServerSide(Paused):
        def connection_lost(self, exc: Exception | None) -> None:
            lost.append(type(exc).__name__)

    async def server() -> None:
        srv = await asyncio.get_running_loop().create_server(ServerSide, None, 7)
        await srv.serve_forever()

    async def client(sim: Simulation) -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_connection(Paused, "server", 7)
        await asyncio.sleep(1)
        # Unread data on both sides: the client's close resets, and the server's
        # transport, paused with data unread, has not noticed yet.
        transport.close()
        await asyncio.sleep(1)
        assert lost == []
        sim.crash("server")
        await asyncio.sleep(1)

    crash_scenario(client, server)
    assert lost == ["ConnectionAbortedError"]


def test_a_machine_crash_is_silent_until_the_reboot_resets_old_connections() -> None:
    async def client(sim: Simulation) -> list[Any]:
        loop = asyncio.get_running_loop()
        reader, writer = await asyncio.open_connection("server", 7)
        writer.write(b"1")
        await reader.readexactly(1)
        sim.crash("server", machine=True)
        seen: list[Any] = []
        # Nobody answers: no EOF, no reset; reads wait, connects time out.
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(reader.read(1), 10)
        with pytest.raises(TimeoutError) as info:
            await asyncio.open_connection("server", 7)
        seen.append((info.value.errno, round(loop.time(), 3)))
        writer.write(b"anyone there?")
        sim.bounce("server")
        # The rebooted kernel knows no such connection: the waiting segment is reset.
        with pytest.raises(ConnectionResetError):
            await reader.read(1)
        writer.close()
        reader, writer = await asyncio.open_connection("server", 7)
        writer.write(b"2")
        seen.append(await reader.readexactly(1))
        writer.close()
        return seen

    import errno

    # Crashed at 0.004 (after a round trip), 10 s of silence, then a 30 s SYN timeout.
    assert crash_scenario(client, syn_timeout=30.0) == [(errno.ETIMEDOUT, 40.004), b"2"]


def test_a_machine_crash_loses_datagrams_to_it() -> None:
    got: list[bytes] = []

    class Sink(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            got.append(data)

    async def server() -> None:
        await asyncio.get_running_loop().create_datagram_endpoint(Sink, local_addr=("0.0.0.0", 53))
        await asyncio.sleep(1000)

    async def client(sim: Simulation) -> None:
        transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
            asyncio.DatagramProtocol, remote_addr=("server", 53)
        )
        transport.sendto(b"before")
        await asyncio.sleep(1)
        sim.crash("server", machine=True)
        transport.sendto(b"while down")
        await asyncio.sleep(1)
        sim.bounce("server")
        await asyncio.sleep(1)
        transport.sendto(b"after")
        await asyncio.sleep(1)
        transport.close()

    crash_scenario(client, server)
    assert got == [b"before", b"after"]


def test_a_main_may_return_any_awaitable_and_a_cancelled_client_fails_the_run() -> None:
    async def value() -> int:
        return 7

    sim = Simulation()
    sim.client("future", lambda: asyncio.ensure_future(value()))
    assert sim.run() == {"future": 7}

    async def gives_up() -> None:
        task = asyncio.current_task()
        assert task is not None
        task.cancel()
        await asyncio.sleep(1)

    sim = Simulation()
    sim.client("quitter", gives_up)
    with pytest.raises(RuntimeError, match="client 'quitter' was cancelled"):
        sim.run()


def test_settings_are_checked() -> None:
    for bad in ({"syn_timeout": 0}, {"tcp_timeout": -1}, {"tcp_window": 0}, {"duration": 0}):
        with pytest.raises(ValueError):
            Simulation(**bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="seed must be an int"):
        Simulation("1")  # type: ignore[arg-type]
    sim = Simulation(2)
    assert repr(sim) == "<Simulation seed=2 hosts=[]>"
    with pytest.raises(RuntimeError, match="made by run"):
        _ = sim.loop
