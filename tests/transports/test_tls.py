"""TLS on both loops: ssl= connections and servers, start_tls, handshake failures.

Certificates come from trustme (a throwaway CA per test session); nothing leaves
loopback.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import pytest


@pytest.fixture(scope="module")
def trustme() -> Any:
    # Only the tests that need certificates skip without trustme.
    return pytest.importorskip("trustme")


@pytest.fixture(scope="module")
def ca(trustme: Any) -> Any:
    return trustme.CA()


@pytest.fixture
def server_ctx(ca: Any) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(ctx)
    return ctx


@pytest.fixture
def client_ctx(ca: Any) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    return ctx


async def settle() -> None:
    """Let the server side finish its own end of a failed handshake (a task of its own)."""
    me = asyncio.current_task()
    for _ in range(500):
        if all(t is me or t.done() for t in asyncio.all_tasks()):
            return
        await asyncio.sleep(0.01)


def take_server_handshake_report(loop: asyncio.AbstractEventLoop, loop_errors: Any) -> None:
    """In debug mode, both loops report the server's end of a handshake that the client
    broke off (asyncio reports errors making an accepted connection's transport only
    then); otherwise there is no report."""
    if loop.get_debug():
        loop_errors.take("^Error on transport creation for incoming connection", (ConnectionError, ssl.SSLError))


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, ssl.SSLError):
        pass
    finally:
        writer.close()


def test_tls_echo_with_streams(
    loop: asyncio.AbstractEventLoop, server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext
) -> None:
    async def main() -> None:
        server = await asyncio.start_server(echo, "127.0.0.1", 0, ssl=server_ctx)
        async with server:
            port = server.sockets[0].getsockname()[1]
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", port, ssl=client_ctx, server_hostname="localhost"
            )
            assert writer.get_extra_info("peercert")["subjectAltName"]
            assert writer.get_extra_info("cipher") is not None
            assert isinstance(writer.get_extra_info("ssl_object"), ssl.SSLObject)
            payload = b"secret" * 50_000
            writer.write(payload)
            got = await reader.readexactly(len(payload))
            assert got == payload
            writer.close()
            await writer.wait_closed()

    loop.run_until_complete(main())


def test_certificate_is_verified_by_default(
    loop: asyncio.AbstractEventLoop, server_ctx: ssl.SSLContext, loop_errors: Any
) -> None:
    async def main() -> None:
        server = await asyncio.start_server(echo, "127.0.0.1", 0, ssl=server_ctx)
        async with server:
            port = server.sockets[0].getsockname()[1]
            # The default context does not trust the test CA: the handshake must fail.
            with pytest.raises(ssl.SSLCertVerificationError):
                await asyncio.open_connection(
                    "127.0.0.1", port, ssl=ssl.create_default_context(), server_hostname="localhost"
                )
            await settle()

    loop.run_until_complete(main())
    take_server_handshake_report(loop, loop_errors)


def test_wrong_hostname_is_rejected(
    loop: asyncio.AbstractEventLoop, server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext, loop_errors: Any
) -> None:
    async def main() -> None:
        server = await asyncio.start_server(echo, "127.0.0.1", 0, ssl=server_ctx)
        async with server:
            port = server.sockets[0].getsockname()[1]
            with pytest.raises(ssl.SSLCertVerificationError):
                await asyncio.open_connection("127.0.0.1", port, ssl=client_ctx, server_hostname="other.example")
            await settle()

    loop.run_until_complete(main())
    take_server_handshake_report(loop, loop_errors)


def test_handshake_timeout(loop: asyncio.AbstractEventLoop, client_ctx: ssl.SSLContext) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # a plain TCP server that never answers the ClientHello
        writer.close()

    async def main() -> None:
        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        async with server:
            port = server.sockets[0].getsockname()[1]
            with pytest.raises((TimeoutError, ConnectionError)):
                await asyncio.open_connection(
                    "127.0.0.1", port, ssl=client_ctx, server_hostname="localhost", ssl_handshake_timeout=0.1
                )

    loop.run_until_complete(main())


def test_start_tls_upgrades_both_sides(
    loop: asyncio.AbstractEventLoop, server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext
) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert await reader.readline() == b"STARTTLS\n"
        writer.write(b"OK\n")
        await writer.drain()
        await writer.start_tls(server_ctx)
        writer.write((await reader.readline()).upper())
        await writer.drain()
        writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        async with server:
            port = server.sockets[0].getsockname()[1]
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"STARTTLS\n")
            assert await reader.readline() == b"OK\n"
            await writer.start_tls(client_ctx, server_hostname="localhost")
            assert writer.get_extra_info("sslcontext") is client_ctx
            writer.write(b"encrypted\n")
            assert await reader.readline() == b"ENCRYPTED\n"
            writer.close()
            await writer.wait_closed()

    loop.run_until_complete(main())


def test_start_tls_rejects_non_context(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> None:
        server = await asyncio.start_server(echo, "127.0.0.1", 0)
        async with server:
            port = server.sockets[0].getsockname()[1]
            _reader, writer = await asyncio.open_connection("127.0.0.1", port)
            with pytest.raises(TypeError, match="SSLContext"):
                await loop.start_tls(writer.transport, writer.transport.get_protocol(), "not a context")  # type: ignore[arg-type]
            writer.close()
            await writer.wait_closed()

    loop.run_until_complete(main())
