"""The handles call_soon/call_later/call_at return: asyncio's public handle API in
every observable way, on both loops, in and out of debug mode. Outside debug mode
looplet's are its own classes, not subclasses of asyncio's (as uvloop's are not)."""

from __future__ import annotations

import asyncio
import contextvars
import re
from typing import Any

import pytest


def noop() -> None:
    pass


@pytest.mark.parametrize("debug", [False, True], ids=["normal", "debug"])
def test_handles_look_like_asyncios(loop: asyncio.AbstractEventLoop, debug: bool, is_looplet: bool) -> None:
    loop.set_debug(debug)
    soon = loop.call_soon(noop)
    later = loop.call_later(10, noop)
    now = loop.time()
    at = loop.call_at(now + 20, noop)
    at_too = loop.call_at(now + 20, noop)
    if is_looplet and not debug:
        # The one documented difference: looplet's own classes, with asyncio's API.
        assert not isinstance(soon, asyncio.Handle) and not isinstance(later, asyncio.Handle)
        assert isinstance(later, type(soon)) and not isinstance(soon, type(later))
    else:
        assert isinstance(soon, asyncio.Handle) and not isinstance(soon, asyncio.TimerHandle)
        assert isinstance(later, asyncio.TimerHandle) and isinstance(at, asyncio.TimerHandle)
    assert soon.get_context() is not None if hasattr(asyncio.Handle, "get_context") else True
    assert type(soon).__name__ == "Handle" and type(later).__name__ == "TimerHandle"
    assert re.match(r"<Handle noop\(\) at .*test_handles\.py:\d+", repr(soon))
    assert re.match(r"<TimerHandle when=[0-9.]+ noop\(\) at ", repr(later))
    assert later.when() > loop.time() and not later.cancelled()
    # Ordered by deadline; equal with the same deadline, callback and arguments.
    assert later < at and at > later and later <= at and not at <= later
    assert at == at_too and at is not at_too
    assert later != at
    assert hash(later) == hash(later.when())
    # Debug mode records where each handle was made; normal mode records nothing.
    assert bool(soon._source_traceback) is debug  # type: ignore[attr-defined]
    assert bool(later._source_traceback) is debug  # type: ignore[attr-defined]
    for handle in (soon, later, at, at_too):
        handle.cancel()
        assert handle.cancelled()
    assert re.match(r"<TimerHandle cancelled when=", repr(later))
    loop.run_until_complete(asyncio.sleep(0))


def test_handle_context_is_copied_or_given(loop: asyncio.AbstractEventLoop) -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="outer")
    seen: list[Any] = []
    ctx = contextvars.copy_context()
    ctx.run(var.set, "given")
    var.set("copied")
    h1 = loop.call_soon(lambda: seen.append(var.get()))
    h2 = loop.call_soon(lambda: seen.append(var.get()), context=ctx)
    var.set("changed after")
    loop.run_until_complete(asyncio.sleep(0))
    assert seen == ["copied", "given"]
    assert h2._context is ctx and h1._context is not ctx  # type: ignore[attr-defined]  # get_context() is 3.12+
