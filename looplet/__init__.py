"""looplet: an asyncio event loop built on explicit poll/wake semantics.

A reactor polls the OS for readiness; readiness and timers wake wakers; a woken
waker puts its callback on the run queue once; the scheduler runs the queue. asyncio's
own Task and Future are driven as they are.

    import asyncio, looplet
    looplet.run(main())                                       # or:
    asyncio.run(main(), loop_factory=looplet.new_event_loop)
"""

from __future__ import annotations

# First: the checks that asyncio has the shapes looplet relies on run before any of it.
from looplet import _asyncio  # noqa: F401  # isort: skip
from looplet._core import scheduler as _scheduler
from looplet._core.clock import Clock
from looplet.loop import EventLoop
from looplet.observe import LagHistogram, Statistics, trace
from looplet.policy import EventLoopPolicy, install
from looplet.runner import new_event_loop, run

#: True when the hot modules (scheduler, timers, wakers, reactor) run compiled by mypyc.
COMPILED: bool = not _scheduler.__file__.endswith(".py")

__all__ = [
    "COMPILED",
    "Clock",
    "EventLoop",
    "EventLoopPolicy",
    "LagHistogram",
    "Statistics",
    "install",
    "new_event_loop",
    "run",
    "trace",
]
__version__ = "0.1.0"
