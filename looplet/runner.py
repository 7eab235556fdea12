"""`looplet.run()`: asyncio.run on a looplet loop.

The one way in that needs no policy: it is `asyncio.Runner(loop_factory=...)`, which
exists on every Python looplet supports (3.11+), so the shutdown sequence (cancel
remaining tasks, shut down async generators and the default executor) is asyncio's
own, not a copy of it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from looplet._asyncio import get_running_loop_or_none
from looplet.engine.clock import Clock

if TYPE_CHECKING:
    from looplet.loop import EventLoop

T = TypeVar("T")


def new_event_loop(
    *, clock: Clock | None = None, reactor: str | None = None, shuffle_seed: int | None = None
) -> EventLoop:
    """Create a new looplet event loop (see `looplet.EventLoop` for the arguments).

    Typed as `looplet.EventLoop`, so that type checkers accept looplet's own methods
    (`statistics()`, `set_clock()`, ...) on the loop it returns.
    """
    from looplet.loop import EventLoop

    return EventLoop(clock=clock, reactor=reactor, shuffle_seed=shuffle_seed)


def run(main: Coroutine[Any, Any, T], *, debug: bool | None = None) -> T:
    """Run coroutine `main` on a new looplet loop and return its result, like asyncio.run().

    Raises:
        RuntimeError: called while another event loop is running in this thread.
    """
    if get_running_loop_or_none() is not None:
        # As asyncio.run: refuse before a Runner exists, so nothing is half set up.
        raise RuntimeError("looplet.run() cannot be called from a running event loop")
    with asyncio.Runner(debug=debug, loop_factory=new_event_loop) as runner:
        return runner.run(main)
