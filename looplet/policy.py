"""The event-loop policy glue: the only module that touches asyncio's policy API.

asyncio's policies are deprecated from Python 3.14 (gh-127949); keeping every use of
them here means that removal touches one file. `install()` makes every
`asyncio.new_event_loop()`, `asyncio.run()` and `asyncio.get_event_loop()` (where it
creates a loop) produce a looplet loop.
"""

from __future__ import annotations

import asyncio
import warnings

from looplet.runner import new_event_loop


class EventLoopPolicy(asyncio.DefaultEventLoopPolicy):
    """asyncio's default policy, creating looplet loops."""

    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        """Create a new looplet event loop."""
        return new_event_loop()


def install() -> asyncio.AbstractEventLoopPolicy:
    """Make looplet the event loop of `asyncio.run()` and `asyncio.new_event_loop()`.

    Returns the policy it replaced, for `restore()`.
    """
    with warnings.catch_warnings():
        # 3.14+ warns on the policy API; looplet's supported Pythons do not, but the
        # call must not turn into an error under -W error on newer ones.
        warnings.simplefilter("ignore", DeprecationWarning)
        previous = asyncio.get_event_loop_policy()
        asyncio.set_event_loop_policy(EventLoopPolicy())
    return previous


def restore(previous: asyncio.AbstractEventLoopPolicy | None) -> None:
    """Put back the policy `install()` returned (None: asyncio's default)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        asyncio.set_event_loop_policy(previous)
