"""The exception handler (looplet/services/errors.py): where errors nobody awaits go.

Covers set_exception_handler / get_exception_handler (and the TypeError for a
non-callable), call_exception_handler (a raising callback reaches the handler with
'message', 'exception' and 'handle' and the loop goes on; the handler runs in the
failing callback's context on 3.12+; a handler that raises falls back to the default
handler; a default handler that raises is logged), default_exception_handler's log
records, and "exception was never retrieved" for futures and tasks.

Faults, under I/O: a callback that raises on every tick (every exception reaches the
handler, in order, and the I/O goes on), and an exception handler that raises itself
(logged, and the loop goes on). Also the bad-input cases of set_exception_handler and
call_exception_handler (tests/bad_input.py).
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
import socket
import sys
from asyncio import format_helpers
from typing import Any

import pytest
from bad_input import pytest_generate_tests, test_bad_input_fails_as_on_asyncio  # noqa: F401
from support import close_server, echo_round_trips, recv_until_eof, report_collector, ticks

var = contextvars.ContextVar("var", default="default")


def test_exception_handler_set_and_get(loop):
    def handler(lp, ctx):
        pass

    assert loop.get_exception_handler() is None
    loop.set_exception_handler(handler)
    assert loop.get_exception_handler() is handler
    loop.set_exception_handler(None)
    assert loop.get_exception_handler() is None


def test_exception_handler_not_callable_is_type_error(loop):
    with pytest.raises(TypeError, match=r"^A callable object or None is expected, got 'nope'$"):
        loop.set_exception_handler("nope")
    assert loop.get_exception_handler() is None


def test_raising_callback_reaches_the_handler_and_the_loop_goes_on(loop):
    contexts = []
    order = []
    loop.set_exception_handler(lambda lp, ctx: contexts.append((lp, ctx)))

    def boom():
        order.append("boom")
        raise ZeroDivisionError("in callback")

    handle = loop.call_soon(boom)
    loop.call_soon(order.append, "after")
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert order == ["boom", "after"]
    assert len(contexts) == 1
    lp, ctx = contexts[0]
    assert lp is loop
    assert {"message", "exception", "handle"} <= set(ctx)
    # Word for word what asyncio's Handle._run says (looplet runs its own handles inline).
    assert ctx["message"] == "Exception in callback " + format_helpers._format_callback_source(boom, ())
    assert isinstance(ctx["exception"], ZeroDivisionError)
    assert ctx["handle"] is handle


@pytest.mark.skipif(sys.version_info < (3, 12), reason="handles and tasks have get_context() from 3.12")
def test_exception_handler_runs_in_the_callbacks_context(loop):
    seen = []
    loop.set_exception_handler(lambda lp, ctx: seen.append(var.get()))
    ctx = contextvars.copy_context()
    ctx.run(var.set, "callback ctx")
    loop.call_soon(lambda: 1 / 0, context=ctx)
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert seen == ["callback ctx"]


def test_raising_task_is_not_reported_while_referenced(loop):
    contexts = []
    loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))

    async def fail():
        raise ValueError("task failed")

    task = loop.create_task(fail())
    loop.run_until_complete(asyncio.sleep(0))
    assert task.done()
    assert contexts == []
    assert isinstance(task.exception(), ValueError)


def test_task_exception_never_retrieved(loop):
    contexts = []
    loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))

    async def fail():
        raise ValueError("never retrieved")

    task = loop.create_task(fail())
    loop.run_until_complete(asyncio.sleep(0))
    assert task.done()
    del task
    gc.collect()
    assert len(contexts) == 1
    ctx = contexts[0]
    assert ctx["message"] == "Task exception was never retrieved"
    assert isinstance(ctx["exception"], ValueError)
    assert isinstance(ctx["future"], asyncio.Task)


def test_future_exception_never_retrieved(loop):
    contexts = []
    loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))
    fut = loop.create_future()
    fut.set_exception(KeyError("lost"))
    del fut
    gc.collect()
    assert [c["message"] for c in contexts] == ["Future exception was never retrieved"]
    assert isinstance(contexts[0]["exception"], KeyError)


def test_handler_that_raises_falls_back_to_the_default(loop, loop_errors):
    calls = []

    def bad_handler(lp, ctx):
        calls.append(ctx["message"])
        raise RuntimeError("handler is broken")

    loop.set_exception_handler(bad_handler)
    order = []
    loop.call_soon(lambda: 1 / 0)
    loop.call_soon(order.append, "loop goes on")
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert order == ["loop goes on"]
    assert len(calls) == 1
    records = loop_errors.take_all()
    assert len(records) == 1
    assert records[0].getMessage().startswith("Unhandled error in exception handler")
    assert records[0].exc_info[0] is RuntimeError
    assert "handler is broken" in str(records[0].exc_info[1])


def test_default_handler_that_raises_is_logged(loop, loop_errors):
    def broken_default(ctx):
        raise RuntimeError("default is broken")

    loop.default_exception_handler = broken_default
    loop.call_exception_handler({"message": "first"})
    loop.set_exception_handler(lambda lp, ctx: 1 / 0)
    loop.call_exception_handler({"message": "second"})
    records = loop_errors.take_all()
    messages = [r.getMessage() for r in records]
    assert messages == [
        "Exception in default exception handler",
        "Exception in default exception handler while handling an unexpected error in custom exception handler",
    ]
    assert [r.exc_info[0] for r in records] == [RuntimeError, RuntimeError]


def test_call_exception_handler_passes_the_context(loop):
    contexts = []
    loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))
    context = {"message": "custom", "extra": 42}
    loop.call_exception_handler(context)
    assert contexts == [context]


def test_default_exception_handler_logs(loop, loop_errors):
    exc = ValueError("logged")
    loop.default_exception_handler({"message": "Something failed", "exception": exc, "extra": "value"})
    loop.default_exception_handler({"other": 1})
    first, second = loop_errors.take_all()
    assert first.getMessage() == "Something failed\nextra: 'value'"
    assert first.exc_info == (ValueError, exc, exc.__traceback__)
    assert second.getMessage() == "Unhandled exception in event loop\nother: 1"
    assert not second.exc_info


def test_call_exception_handler_without_handler_uses_the_default(loop, loop_errors):
    loop.call_exception_handler({"message": "via default", "exception": OSError("x")})
    (record,) = loop_errors.take_all()
    assert record.getMessage() == "via default"
    assert record.exc_info[0] is OSError


# -- callbacks and exception handlers that raise, under I/O ------------------------------


class Boom(Exception):
    pass


def test_callback_raising_on_every_tick_does_not_starve_io(loop: asyncio.AbstractEventLoop) -> None:
    reports = report_collector(loop)
    raised: list[int] = []
    stopping = False

    def raise_every_tick(n: int) -> None:
        if stopping:
            return
        loop.call_soon(raise_every_tick, n + 1)  # reschedule first: the raise cannot stop it
        raised.append(n)
        raise Boom(n)

    async def main() -> int:
        nonlocal stopping
        loop.call_soon(raise_every_tick, 0)
        try:
            return await echo_round_trips(50)
        finally:
            stopping = True

    assert loop.run_until_complete(main()) == 50
    loop.run_until_complete(ticks(2))  # the last reschedule sees `stopping` and ends
    # It raised on every tick the echo took (at least one per round trip)...
    assert len(raised) >= 50
    # ...and every one of those exceptions reached the handler, in order, and nothing else.
    assert [ctx["exception"].args[0] for ctx in reports] == raised == list(range(len(raised)))
    assert all(type(ctx["exception"]) is Boom for ctx in reports)
    assert all(ctx["message"].startswith("Exception in callback ") for ctx in reports)


def divide_by_zero() -> None:
    raise ZeroDivisionError("every time")


class RaisesOnData(asyncio.Protocol):
    def __init__(self) -> None:
        self.lost: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        raise Boom("data_received")

    def connection_lost(self, exc: BaseException | None) -> None:
        self.lost.set_result(exc)


def test_exception_handler_that_raises_is_logged_and_the_loop_goes_on(
    loop: asyncio.AbstractEventLoop, loop_errors: Any
) -> None:
    handled: list[str] = []

    def broken_handler(lp: asyncio.AbstractEventLoop, ctx: dict[str, Any]) -> None:
        handled.append(ctx["message"])
        raise RuntimeError("the handler is broken")

    loop.set_exception_handler(broken_handler)

    async def main() -> tuple[BaseException | None, bytes, int]:
        # A burst of failing callbacks.
        for _ in range(10):
            loop.call_soon(divide_by_zero)
        await ticks(2)
        # A protocol that fails: its transport reports the error, then closes.
        proto = RaisesOnData()
        server = await loop.create_server(lambda: proto, "127.0.0.1", 0)
        peer = socket.create_connection(server.sockets[0].getsockname())
        peer.setblocking(False)
        with peer:
            await loop.sock_sendall(peer, b"x")
            lost = await proto.lost
            after = await recv_until_eof(peer)
        await close_server(server)
        # A future whose exception nobody retrieves.
        fut = loop.create_future()
        fut.set_exception(Boom("never retrieved"))
        del fut
        gc.collect()
        # And the loop still does real work.
        return lost, after, await echo_round_trips(5)

    lost, after, right = loop.run_until_complete(main())
    assert right == 5
    assert type(lost) is Boom
    assert after == b""
    assert handled[:10] == [handled[0]] * 10 and handled[0].startswith("Exception in callback ")
    assert handled[10:] == [
        "Fatal error: protocol.data_received() call failed.",
        "Future exception was never retrieved",
    ]
    # Each failure of the handler was logged once, with the handler's own exception.
    unhandled = loop_errors.take_all()
    assert [r.getMessage().splitlines()[0] for r in unhandled] == ["Unhandled error in exception handler"] * 12
    assert len(handled) == 12
    assert all(r.exc_info is not None and r.exc_info[0] is RuntimeError for r in unhandled)
