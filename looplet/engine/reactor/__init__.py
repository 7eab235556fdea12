"""The OS readiness drivers; the only package of looplet that imports `select`.

`pick_reactor()` chooses the backend: `LOOPLET_REACTOR=epoll|kqueue|poll` forces one,
otherwise the best the platform has (epoll, then kqueue, then poll), as
`selectors.DefaultSelector` would.
"""

from __future__ import annotations

import os
import select
from collections import deque

from looplet.engine.reactor.base import READ, WRITE, Reactor

__all__ = ["READ", "WRITE", "Reactor", "available_reactors", "pick_reactor"]


def available_reactors() -> list[str]:
    """The backends this platform supports, best first."""
    names = []
    if hasattr(select, "epoll"):
        names.append("epoll")
    if hasattr(select, "kqueue"):
        names.append("kqueue")
    if hasattr(select, "poll"):
        names.append("poll")
    return names


def pick_reactor(ready: deque[object], name: str | None = None) -> Reactor:
    """Create the reactor named `name`, or `$LOOPLET_REACTOR`, or the platform's best.

    Raises:
        ValueError: the name is unknown or not available on this platform (the message
            names `LOOPLET_REACTOR` when the name came from there).
    """
    source = "reactor"
    if name is None:
        name = os.environ.get("LOOPLET_REACTOR") or None
        source = "LOOPLET_REACTOR"
    avail = available_reactors()
    if name is None:
        name = avail[0]
    if name not in avail:
        raise ValueError(f"{source}={name!r}: reactor {name!r} is not available here (available: {', '.join(avail)})")
    if name == "epoll":
        from looplet.engine.reactor.epoll import EpollReactor

        return EpollReactor(ready)
    if name == "kqueue":
        from looplet.engine.reactor.kqueue import KqueueReactor

        return KqueueReactor(ready)
    from looplet.engine.reactor.poll import PollReactor

    return PollReactor(ready)
