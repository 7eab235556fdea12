"""TLS in the simulation: asyncio's own TLS layer over simulated connections.

`open_connection(..., ssl=...)` and `start_server(..., ssl=...)` handshake over the
simulated network (a CA made by trustme, the server's certificate for its simulated
name), `start_tls` upgrades an open connection, a client that does not trust the
certificate fails as over a real network, and one seed still gives one run.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import pytest

from looplet.sim import Simulation

trustme = pytest.importorskip("trustme", reason="trustme is not installed")


def contexts() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("server").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    return server_context, client_context


def tls_echo(server_context: ssl.SSLContext) -> Any:
    async def server() -> None:
        async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while data := await reader.read(100):
                writer.write(data)
            writer.close()

        srv = await asyncio.start_server(echo, None, 443, ssl=server_context)
        await srv.serve_forever()

    return server


def test_a_tls_connection_carries_bytes_both_ways() -> None:
    server_context, client_context = contexts()

    async def client() -> tuple[bytes, str]:
        reader, writer = await asyncio.open_connection("server", 443, ssl=client_context)
        writer.write(b"secret")
        data = await reader.readexactly(6)
        version = writer.get_extra_info("ssl_object").version()
        writer.close()
        await writer.wait_closed()
        return data, version

    sim = Simulation(latency=0.01)
    sim.host("server", tls_echo(server_context))
    sim.client("client", client)
    data, version = sim.run()["client"]
    assert data == b"secret"
    assert version.startswith("TLS")


def test_a_client_that_does_not_trust_the_certificate_fails_the_handshake() -> None:
    server_context, _ = contexts()

    async def client() -> str:
        with pytest.raises(ssl.SSLCertVerificationError) as info:
            await asyncio.open_connection("server", 443, ssl=ssl.create_default_context())
        return info.value.verify_message

    sim = Simulation()
    sim.host("server", tls_echo(server_context))
    sim.client("client", client)
    assert "unable to get local issuer certificate" in sim.run()["client"]


def test_start_tls_upgrades_an_open_connection() -> None:
    server_context, client_context = contexts()

    async def server() -> None:
        async def starttls(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            assert await reader.readline() == b"STARTTLS\n"
            writer.write(b"GO\n")
            await writer.drain()
            await writer.start_tls(server_context)
            writer.write(await reader.readexactly(7))
            writer.close()

        srv = await asyncio.start_server(starttls, None, 25)
        await srv.serve_forever()

    async def client() -> tuple[bytes, bool]:
        reader, writer = await asyncio.open_connection("server", 25)
        writer.write(b"STARTTLS\n")
        assert await reader.readline() == b"GO\n"
        await writer.start_tls(client_context, server_hostname="server")
        writer.write(b"private")
        data = await reader.readexactly(7)
        encrypted = writer.get_extra_info("ssl_object") is not None
        writer.close()
        return data, encrypted

    sim = Simulation()
    sim.host("server", server)
    sim.client("client", client)
    assert sim.run()["client"] == (b"private", True)


def test_one_seed_gives_one_tls_run_but_for_the_sizes_of_handshake_records() -> None:
    # OpenSSL draws its own randomness, which no seed reaches: the bytes of a handshake
    # differ from run to run, and so, by a byte or two, does the size of a server's
    # handshake flight. Without a bandwidth limit sizes do not move time, so the runs
    # are the same in everything else: every packet's fate, at the same times.
    server_context, client_context = contexts()

    def run(seed: int) -> Any:
        times: list[float] = []

        async def client() -> None:
            loop = asyncio.get_running_loop()
            for _ in range(3):
                reader, writer = await asyncio.open_connection("server", 443, ssl=client_context)
                writer.write(b"x" * 5000)
                await reader.readexactly(5000)
                times.append(loop.time())
                writer.close()
                await writer.wait_closed()

        sim = Simulation(seed, latency=(0.001, 0.02), loss=0.1, log=True)
        sim.host("server", tls_echo(server_context))
        sim.client("client", client)
        sim.run()
        return times, [entry[:5] for entry in sim.network_log]

    first = run(3)
    assert run(3) == first
