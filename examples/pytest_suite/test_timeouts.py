"""Timeouts: asyncio.timeout and asyncio.wait_for, the step that is too slow and the one that is not."""

from __future__ import annotations

import asyncio

import pytest


@pytest.mark.asyncio
async def test_timeout_cancels_the_slow_step(record_loop):
    record_loop()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.01) as cm:
            await asyncio.sleep(3600)
    assert cm.expired()


@pytest.mark.asyncio
async def test_timeout_not_reached(record_loop):
    record_loop()
    async with asyncio.timeout(3600) as cm:
        await asyncio.sleep(0)
    assert not cm.expired()


@pytest.mark.asyncio
async def test_wait_for_returns_the_result(record_loop):
    record_loop()
    assert await asyncio.wait_for(asyncio.sleep(0, result="done"), timeout=3600) == "done"


@pytest.mark.asyncio
async def test_wait_for_cancels_on_timeout(record_loop):
    record_loop()
    never = asyncio.Event()
    waiter = asyncio.ensure_future(never.wait())
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(waiter, timeout=0.01)
    assert waiter.cancelled()
