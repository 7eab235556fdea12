"""asyncio streams: a line-upper-casing echo server on 127.0.0.1, as an async fixture."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio


async def upper_echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while line := await reader.readline():
            writer.write(line.upper())
            await writer.drain()
    finally:
        writer.close()
        await writer.wait_closed()


@pytest_asyncio.fixture
async def echo_server() -> AsyncIterator[tuple[str, int]]:
    server = await asyncio.start_server(upper_echo, "127.0.0.1", 0)
    async with server:
        host, port = server.sockets[0].getsockname()[:2]
        yield host, port


async def converse(address: tuple[str, int], lines: list[bytes]) -> list[bytes]:
    reader, writer = await asyncio.open_connection(*address)
    answers = []
    try:
        for line in lines:
            writer.write(line)
            await writer.drain()
            answers.append(await reader.readline())
    finally:
        writer.close()
        await writer.wait_closed()
    return answers


@pytest.mark.asyncio
async def test_echo_answers_each_line(echo_server, record_loop):
    record_loop()
    assert await converse(echo_server, [b"hello\n", b"streams\n"]) == [b"HELLO\n", b"STREAMS\n"]


@pytest.mark.asyncio
async def test_echo_serves_clients_concurrently(echo_server, record_loop):
    record_loop()
    async with asyncio.TaskGroup() as tg:
        talks = [tg.create_task(converse(echo_server, [f"client {i}\n".encode()])) for i in range(10)]
    assert [t.result() for t in talks] == [[f"CLIENT {i}\n".encode()] for i in range(10)]


@pytest.mark.asyncio
async def test_server_end_of_stream_reaches_client(echo_server, record_loop):
    record_loop()
    reader, writer = await asyncio.open_connection(*echo_server)
    writer.write_eof()
    assert await reader.read() == b""  # the server saw EOF and closed its end
    writer.close()
    await writer.wait_closed()
