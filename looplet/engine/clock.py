"""Clocks: where the loop's idea of "now" comes from.

The invariant this module owns: `loop.time()` is `clock.time()`, and it never goes
backwards. The scheduler asks the clock nothing else on the hot path, except the one
`virtual` flag it reads when it would block: a virtual clock is advanced to the next
deadline instead of letting the reactor sleep, unless work outside the loop may
deliver first; then it is advanced by the real time the reactor waited (see
`looplet.testing.VirtualClock`).
"""

from __future__ import annotations

import time
from typing import Final


class Clock:
    """The clock protocol, and the real monotonic clock.

    Subclasses replace `time()`; a subclass with `virtual = True` must also implement
    `advance_to(deadline)`, which the scheduler calls instead of sleeping. `virtual`
    and `resolution` are read once, when the loop takes the clock (`set_clock`).
    """

    __slots__ = ("resolution", "virtual")

    def __init__(self) -> None:
        #: The granularity of `time()`; timers due within it count as due now, as in asyncio.
        self.resolution: float = time.get_clock_info("monotonic").resolution
        #: True for clocks that jump instead of letting the reactor block.
        self.virtual: bool = False

    def time(self) -> float:
        """Return the current time in seconds, monotonic."""
        return time.monotonic()

    def advance_to(self, deadline: float) -> None:
        """Move a virtual clock to `deadline`; a real clock cannot be moved."""
        raise RuntimeError("a real clock cannot be advanced")


MONOTONIC: Final = Clock()
