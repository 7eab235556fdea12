"""looplet.testing: virtual time through `VirtualClock` and `looplet.testing.run`.

An hour of virtual sleep under a ten-minute timeout ends at once, at loop time 600 s,
without the loop ever blocking in the OS; and timeouts fire in deadline order on
virtual time.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import looplet
from looplet.testing import VirtualClock


def test_an_hour_of_virtual_sleep_with_a_ten_minute_timeout() -> None:
    clock = VirtualClock()
    seen: dict[str, Any] = {}

    async def main() -> None:
        loop: Any = asyncio.get_running_loop()
        start = loop.time()
        try:
            async with asyncio.timeout(600):
                await asyncio.sleep(3600)
        except TimeoutError:
            seen["elapsed"] = loop.time() - start
        seen["stats"] = loop.statistics()

    wall = time.monotonic()
    looplet.testing.run(main(), clock=clock)
    assert seen["elapsed"] == 600.0 and clock.time() == 600.0
    # The loop never blocked in the OS: it jumped over the idle time.
    assert seen["stats"].blocked_seconds == 0.0
    # Not a timing assertion: real sleeping would take 600 s; this only guards that.
    assert time.monotonic() - wall < 60


def test_timeouts_fire_in_deadline_order_on_virtual_time() -> None:
    order: list[tuple[str, float]] = []

    async def waiter(name: str, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        try:
            await asyncio.wait_for(asyncio.sleep(10_000), timeout)
        except TimeoutError:
            order.append((name, loop.time()))

    async def main() -> None:
        await asyncio.gather(waiter("c", 300), waiter("a", 5), waiter("b", 60.5))

    looplet.testing.run(main())
    assert order == [("a", 5.0), ("b", 60.5), ("c", 300.0)]
