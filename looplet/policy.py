"""The event-loop policy glue: the only module that touches asyncio's policy API.

`install()` makes every `asyncio.new_event_loop()`, `asyncio.run()` and
`asyncio.Runner()` without a loop factory (and `asyncio.get_event_loop()` where it
creates a loop) produce a looplet loop, through `EventLoopPolicy`: asyncio's default
policy, making looplet loops.

asyncio deprecates its policies in 3.14 and removes them in 3.16; `loop_factory`
(`looplet.run`, `asyncio.run(main(), loop_factory=looplet.new_event_loop)`,
`asyncio.Runner(loop_factory=...)`) is the way in that needs none. The invariant
owned here: nothing deprecated runs unless asked for. Importing looplet touches no
policy API; the `EventLoopPolicy` class is made on first access; on 3.14 and 3.15,
the public ways in (`EventLoopPolicy`, `install()`) warn as asyncio's own policy API
does, pointing to `loop_factory`, and then use asyncio's private spellings, which do
not warn a second time; looplet's own entry points (`python -m looplet`, the pytest
plugin) use `use_looplet_policy()`, which does not warn, because their users called
nothing deprecated; from 3.16 on there is no policy to install.
"""

from __future__ import annotations

import asyncio
import threading
import warnings
from typing import TYPE_CHECKING, Any, cast

from looplet import _asyncio
from looplet._asyncio import PolicyAPI
from looplet.runner import new_event_loop

_USE_LOOP_FACTORY = (
    "use asyncio.run(main(), loop_factory=looplet.new_event_loop), "
    "asyncio.Runner(loop_factory=looplet.new_event_loop) or looplet.run(main()) instead"
)

_policy_class: type[asyncio.AbstractEventLoopPolicy] | None = None
# One class for the process, however many threads ask first: isinstance() relies on it.
_policy_class_lock = threading.Lock()


def _removed(what: str) -> str:
    return f"{what} needs asyncio's event loop policies, which Python 3.16 removed: {_USE_LOOP_FACTORY}"


def policy_class() -> type[asyncio.AbstractEventLoopPolicy]:
    """The `EventLoopPolicy` class, made on the first call (no warning).

    Raises:
        AttributeError: asyncio has no policies (Python 3.16+).
    """
    global _policy_class
    base = _asyncio.DefaultEventLoopPolicy
    if base is None:
        raise AttributeError(_removed("looplet.EventLoopPolicy"))
    with _policy_class_lock:
        if _policy_class is None:
            # Made with type(): the base is asyncio's default policy class as this Python
            # spells it without a warning, which a class statement cannot name statically.
            made = type(
                "EventLoopPolicy",
                (base,),
                {
                    "__doc__": "asyncio's default policy, creating looplet loops.",
                    "__module__": __name__,
                    "__qualname__": "EventLoopPolicy",
                    "new_event_loop": _new_event_loop,
                },
            )
            _policy_class = cast("type[asyncio.AbstractEventLoopPolicy]", made)
        return _policy_class


def _new_event_loop(self: asyncio.AbstractEventLoopPolicy) -> asyncio.AbstractEventLoop:
    """Create a new looplet event loop."""
    return new_event_loop()


def lookup_policy_class(stacklevel: int) -> type[asyncio.AbstractEventLoopPolicy]:
    """`looplet.EventLoopPolicy` as an attribute access gets it: with asyncio's warning
    on 3.14 and 3.15, attributed `stacklevel` frames up (the code that named it)."""
    if _asyncio.POLICY_API is PolicyAPI.DEPRECATED:
        warnings.warn(
            "looplet.EventLoopPolicy is deprecated, as asyncio's event loop policies are, "
            f"and slated for removal in Python 3.16: {_USE_LOOP_FACTORY}",
            DeprecationWarning,
            stacklevel=stacklevel,
        )
    return policy_class()


def _swap_policy(policy: asyncio.AbstractEventLoopPolicy | None) -> asyncio.AbstractEventLoopPolicy:
    get, set_ = _asyncio.get_event_loop_policy, _asyncio.set_event_loop_policy
    if get is None or set_ is None:
        raise RuntimeError(_removed("installing looplet as asyncio's event loop"))
    previous = get()
    set_(policy)
    return previous


def install() -> asyncio.AbstractEventLoopPolicy:
    """Make looplet the event loop of `asyncio.run()` and `asyncio.new_event_loop()`.

    Returns the policy it replaced, for `restore()`. On Python 3.14 and 3.15 it warns
    (DeprecationWarning), as `asyncio.set_event_loop_policy` does: pass
    `loop_factory=looplet.new_event_loop` to `asyncio.run` or `asyncio.Runner`, or
    call `looplet.run`, instead.

    Raises:
        RuntimeError: asyncio has no policies (Python 3.16+).
    """
    if _asyncio.POLICY_API is PolicyAPI.DEPRECATED:
        warnings.warn(
            "looplet.install() sets asyncio's event loop policy, and asyncio's policies are "
            f"deprecated and slated for removal in Python 3.16: {_USE_LOOP_FACTORY}",
            DeprecationWarning,
            stacklevel=2,
        )
    return use_looplet_policy()


def use_looplet_policy() -> asyncio.AbstractEventLoopPolicy:
    """`install()` without its warning, for looplet's own entry points (`python -m
    looplet`, the pytest plugin): there the policy is looplet's choice, not a call to a
    deprecated API the user could replace.

    Raises:
        RuntimeError: asyncio has no policies (Python 3.16+).
    """
    if _asyncio.DefaultEventLoopPolicy is None:
        raise RuntimeError(_removed("installing looplet as asyncio's event loop"))
    return _swap_policy(policy_class()())


def restore(previous: asyncio.AbstractEventLoopPolicy | None) -> None:
    """Put back the policy `install()` returned (None: asyncio's default)."""
    _swap_policy(previous)


if TYPE_CHECKING:
    # What type checkers see: the class `policy_class()` makes at run time.
    class EventLoopPolicy(asyncio.DefaultEventLoopPolicy):
        """asyncio's default policy, creating looplet loops."""

        def new_event_loop(self) -> asyncio.AbstractEventLoop: ...

else:

    def __getattr__(name: str) -> Any:
        if name == "EventLoopPolicy":
            return lookup_policy_class(stacklevel=3)
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
