"""The simulated network (looplet/sim/network.py): latency, bandwidth, loss, partitions and holds.

Latency is what a byte takes from one host to another, fixed or drawn for each
packet, per link; bandwidth queues packets on a link; TCP loses no data to loss,
only time (a retransmission); a partition stops everything between two hosts: new
connects time out, data waits and arrives, in order, after the repair, datagrams are
lost; a hold keeps everything, datagrams too, until the release.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from looplet.sim import RETRANSMIT_DELAY, LinkConfig, Simulation


def now() -> float:
    return asyncio.get_running_loop().time()


async def echo_server() -> None:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(1 << 16):
            writer.write(data)
        writer.close()

    server = await asyncio.start_server(echo, None, 7)
    await server.serve_forever()


def simulate(client: Callable[[Simulation], Awaitable[Any]], **kwargs: Any) -> Any:
    sim = Simulation(**kwargs)
    sim.host("server", echo_server)
    sim.client("client", lambda: client(sim))
    return sim.run()["client"]


async def round_trip(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: bytes = b"ping") -> float:
    start = now()
    writer.write(data)
    assert await reader.readexactly(len(data)) == data
    return now() - start


def test_latency_is_per_link() -> None:
    async def client(sim: Simulation) -> list[float]:
        reader, writer = await asyncio.open_connection("server", 7)
        times = [await round_trip(reader, writer)]
        sim.set_link("client", "server", latency=0.1)
        times.append(await round_trip(reader, writer))
        writer.close()
        return times

    assert simulate(client, latency=0.005) == [pytest.approx(0.01), pytest.approx(0.2)]


def test_a_latency_range_is_drawn_for_each_packet() -> None:
    async def client(sim: Simulation) -> list[float]:
        reader, writer = await asyncio.open_connection("server", 7)
        times = [await round_trip(reader, writer) for _ in range(20)]
        writer.close()
        return times

    times = simulate(client, latency=(0.01, 0.03), seed=5)
    assert all(0.02 <= t <= 0.06 for t in times)
    assert len(set(times)) > 10
    assert simulate(client, latency=(0.01, 0.03), seed=5) == times


def test_bandwidth_queues_bytes_on_the_link() -> None:
    async def client(sim: Simulation) -> float:
        reader, writer = await asyncio.open_connection("server", 7)
        elapsed = await round_trip(reader, writer, b"x" * 100_000)
        writer.close()
        return elapsed

    # 100 kB each way at 1 MB/s: 0.1 s on the wire out, 0.1 s back, plus latency.
    assert simulate(client, latency=0.0, bandwidth=1_000_000) == pytest.approx(0.2)
    assert simulate(client, latency=0.0) == 0.0


def test_tcp_loses_time_not_data_to_loss() -> None:
    async def client(sim: Simulation) -> float:
        reader, writer = await asyncio.open_connection("server", 7)
        total = 0.0
        for i in range(50):
            total += await round_trip(reader, writer, b"%d" % i)
        writer.close()
        return total

    clean = simulate(client, latency=0.001)
    lossy = simulate(client, latency=0.001, loss=0.3, seed=2)
    assert clean == pytest.approx(0.1)
    # Each loss costs a whole retransmission delay.
    extra = lossy - clean
    assert extra >= RETRANSMIT_DELAY
    assert extra / RETRANSMIT_DELAY == pytest.approx(round(extra / RETRANSMIT_DELAY))


def test_a_connect_across_a_partition_times_out() -> None:
    async def client(sim: Simulation) -> tuple[str, float]:
        sim.partition("client", "server")
        with pytest.raises(TimeoutError) as info:
            await asyncio.open_connection("server", 7)
        return str(info.value), now()

    assert simulate(client, syn_timeout=20.0) == ("[Errno 110] Connect call failed ('10.0.0.1', 7)", 20.0)


def test_a_connect_completes_when_the_partition_heals_in_time() -> None:
    async def client(sim: Simulation) -> float:
        sim.partition("client", "server")
        asyncio.get_running_loop().call_later(5, sim.repair, "client", "server")
        _reader, writer = await asyncio.open_connection("server", 7)
        connected = now()
        writer.close()
        return connected

    # The SYN waits out the partition; the handshake ends a round trip after the repair.
    assert simulate(client, latency=0.01) == pytest.approx(5.02)


def test_data_sent_into_a_partition_arrives_in_order_after_the_repair() -> None:
    async def client(sim: Simulation) -> tuple[bytes, float]:
        reader, writer = await asyncio.open_connection("server", 7)
        sim.partition("client", "server")
        for word in (b"one ", b"two ", b"three"):
            writer.write(word)
            await asyncio.sleep(1)
        asyncio.get_running_loop().call_later(10, sim.repair, "client", "server")
        data = await reader.readexactly(13)
        writer.close()
        return data, now()

    data, when = simulate(client, latency=0.01)
    assert data == b"one two three"
    # Connected at 0.02, repaired 13 s later, a round trip to hear the echo.
    assert when == pytest.approx(0.02 + 13 + 0.02)


def test_datagrams_are_lost_in_a_partition_and_held_by_a_hold() -> None:
    got: list[tuple[bytes, float]] = []

    class Sink(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            got.append((data, now()))

    async def server() -> None:
        await asyncio.get_running_loop().create_datagram_endpoint(Sink, local_addr=("0.0.0.0", 53))
        await asyncio.sleep(100)

    async def client() -> None:
        transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
            asyncio.DatagramProtocol, remote_addr=("server", 53)
        )
        sim.partition("client", "server")
        transport.sendto(b"lost")
        await asyncio.sleep(1)
        sim.repair("client", "server")
        sim.hold("client", "server")
        transport.sendto(b"held")
        await asyncio.sleep(1)
        sim.release("client", "server")
        transport.sendto(b"free")
        await asyncio.sleep(1)
        transport.close()

    sim = Simulation(latency=0.01)
    sim.host("server", server)
    sim.client("client", client)
    sim.run()
    assert got == [(b"held", 2.01), (b"free", 2.01)]


def test_a_hold_keeps_tcp_data_until_the_release() -> None:
    async def client(sim: Simulation) -> list[float]:
        reader, writer = await asyncio.open_connection("server", 7)
        sim.hold("client", "server")
        asyncio.get_running_loop().call_later(30, sim.release, "client", "server")
        elapsed = await round_trip(reader, writer)
        writer.close()
        return [elapsed, now()]

    assert simulate(client, latency=0.01) == [pytest.approx(30.02), pytest.approx(30.04)]


def test_a_one_way_partition_cuts_one_direction() -> None:
    async def client(sim: Simulation) -> Any:
        reader, writer = await asyncio.open_connection("server", 7)
        sim.partition_oneway("server", "client")
        writer.write(b"x")
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(reader.readexactly(1), 5)
        sim.repair_oneway("server", "client")
        got = await reader.readexactly(1)
        writer.close()
        return got, now()

    assert simulate(client, latency=0.01) == (b"x", pytest.approx(5.03))


def test_datagram_loss_and_duplication_follow_the_seed() -> None:
    def run(seed: int) -> list[int]:
        got: list[int] = []

        class Sink(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
                got.append(int(data))

        async def server() -> None:
            await asyncio.get_running_loop().create_datagram_endpoint(Sink, local_addr=("0.0.0.0", 53))
            await asyncio.sleep(100)

        async def client() -> None:
            loop = asyncio.get_running_loop()
            transport, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, remote_addr=("server", 53))
            for i in range(200):
                transport.sendto(b"%d" % i)
            await asyncio.sleep(1)
            transport.close()

        sim = Simulation(seed, latency=(0.001, 0.05), loss=0.2, duplicate=0.1)
        sim.host("server", server)
        sim.client("client", client)
        sim.run()
        return got

    got = run(1)
    assert run(1) == got
    assert run(2) != got
    assert len(set(got)) < 200  # some lost
    assert len(got) > len(set(got))  # some twice
    assert got != sorted(got)  # reordered by the latency drawn


def test_link_settings_are_checked() -> None:
    for bad in ({"latency": -1.0}, {"latency": (0.2, 0.1)}, {"loss": 1.5}, {"bandwidth": 0}, {"duplicate": -0.1}):
        with pytest.raises(ValueError):
            LinkConfig(**bad)  # type: ignore[arg-type]
    sim = Simulation()
    with pytest.raises(KeyError, match="no host named 'nobody'"):
        sim.partition("nobody", "else")


def test_data_stuck_at_a_long_partition_times_the_connection_out() -> None:
    async def client(sim: Simulation) -> tuple[str, float, str]:
        reader, writer = await asyncio.open_connection("server", 7)
        await round_trip(reader, writer)
        sim.partition("client", "server")
        sent = now()
        writer.write(b"into the void")
        with pytest.raises(TimeoutError) as info:
            await reader.read(100)
        failed = now() - sent
        writer.close()
        # After the repair, the server's side of the connection is still open: its
        # next segment to the client finds no connection and is answered with a reset.
        sim.repair("client", "server")
        return str(info.value), failed, "ok"

    message, failed, _ = simulate(client, latency=0.01, tcp_timeout=60.0)
    assert message == "[Errno 110] Connection timed out"
    # Stopped at the partition a latency after it was sent; then the timeout.
    assert failed == pytest.approx(0.01 + 60.0)


def test_a_partition_shorter_than_the_tcp_timeout_only_delays() -> None:
    async def client(sim: Simulation) -> bytes:
        reader, writer = await asyncio.open_connection("server", 7)
        sim.partition("client", "server")
        writer.write(b"patience")
        asyncio.get_running_loop().call_later(59, sim.repair, "client", "server")
        data = await reader.readexactly(8)
        await asyncio.sleep(100)
        writer.write(b"!")
        assert await reader.readexactly(1) == b"!"
        writer.close()
        return data

    assert simulate(client, latency=0.01, tcp_timeout=60.0) == b"patience"
