"""looplet: an asyncio event loop built on explicit poll/wake semantics.

A reactor polls the OS for readiness; a ready fd's watch puts its callback on the
run queue once, due timers put theirs there directly; the scheduler runs the queue. asyncio's
own Task and Future are driven as they are.

    import asyncio, looplet
    looplet.run(main())                                       # or:
    asyncio.run(main(), loop_factory=looplet.new_event_loop)

The invariant owned here: importing looplet runs the checks of asyncio's internals
(looplet/_asyncio.py, imported first) and touches no deprecated asyncio API; the
policy class, deprecated with asyncio's policies from Python 3.14 on, is made only
when `looplet.EventLoopPolicy` is first asked for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

# First of looplet's modules: the shape checks run before any of the others.
from looplet._asyncio import POLICY_API, PolicyAPI
from looplet.engine import scheduler as _scheduler
from looplet.engine.clock import Clock
from looplet.loop import EventLoop
from looplet.policy import install
from looplet.runner import new_event_loop, run
from looplet.tools.observe import LagHistogram, Statistics, trace

if TYPE_CHECKING:
    from looplet.policy import EventLoopPolicy

#: True when the engine (looplet/engine/: scheduler, timers, reactor...) runs compiled by mypyc.
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
if POLICY_API is not PolicyAPI.CURRENT:
    # As asyncio's own policy classes left its __all__ on 3.14: `from looplet import *`
    # must not warn, nor fail where the class cannot exist.
    __all__.remove("EventLoopPolicy")
__version__ = "0.1.0"

if not TYPE_CHECKING:
    # EventLoopPolicy is made on first access (looplet/policy.py): importing looplet
    # touches no policy API, deprecated from Python 3.14 on.

    def __getattr__(name: str) -> Any:
        if name == "EventLoopPolicy":
            from looplet.policy import lookup_policy_class

            return lookup_policy_class(stacklevel=3)
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(set(globals()) | set(__all__))
