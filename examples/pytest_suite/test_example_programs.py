"""The example programs examples/hello.py and examples/mixed.py, run as tests: same output."""

from __future__ import annotations

import asyncio

import hello
import mixed
import pytest


@pytest.mark.asyncio
async def test_hello(capsys, record_loop):
    record_loop()
    await hello.main()
    running_on, *lines = capsys.readouterr().out.splitlines()
    loop = type(asyncio.get_running_loop())
    assert running_on == f"Running on {loop.__module__}.{loop.__qualname__}"
    assert lines == [
        "Greeting concurrently:",
        "  asyncio is ready",
        "  world is ready",
        "Hello, world! Hello, asyncio!",
        "The timer says: ding",
        "Sent ping, got pong",
        "Caught SIGUSR1",
        "Goodbye!",
    ]


@pytest.mark.asyncio
async def test_mixed(capsys, record_loop):
    record_loop()
    await mixed.main()
    assert capsys.readouterr().out.splitlines() == [
        "list: 4 words, crc32 8e9c1a99",
        "motto: 6 words, crc32 75323bd5",
        "poem: 11 words, crc32 c84fe80a",
        "condition met: a+b+c",
        "slow step timed out",
        "got SIGUSR1",
        "echo: HELLO",
        "echo: LOOPLET",
        "done",
    ]
