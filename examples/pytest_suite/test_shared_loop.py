"""A module-scoped loop: every test here, and the module's async fixture, share one loop."""

from __future__ import annotations

import asyncio

import pytest
import pytest_asyncio

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def module_loop() -> asyncio.AbstractEventLoop:
    return asyncio.get_running_loop()


async def test_first_runs_on_the_module_loop(module_loop, record_loop):
    record_loop()
    assert asyncio.get_running_loop() is module_loop


async def test_second_runs_on_the_same_loop(module_loop, record_loop):
    record_loop()
    assert asyncio.get_running_loop() is module_loop
