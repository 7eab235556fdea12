"""The loop's exception handler: where errors no caller can see are reported.

The invariant owned here: `call_exception_handler` never raises (but for SystemExit
and KeyboardInterrupt): a broken custom handler falls back to the default one, and a
broken default one is logged, so a failing callback can never stop the loop.
This follows asyncio's BaseEventLoop word for word in behaviour.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from looplet.engine.io import Io

logger = logging.getLogger("asyncio")

ExceptionHandler = Callable[[asyncio.AbstractEventLoop, dict[str, Any]], object]


def default_exception_handler(io: Io, context: dict[str, Any]) -> None:
    """Log `context` with its traceback, as asyncio's default handler does."""
    message = context.get("message") or "Unhandled exception in event loop"
    exception = context.get("exception")
    exc_info: Any = (type(exception), exception, exception.__traceback__) if exception is not None else False
    current = io.current_handle
    current = getattr(current, "_handle", current)  # a Watch: the handle it runs
    handle_tb = getattr(current, "_source_traceback", None)
    if "source_traceback" not in context and handle_tb:
        context["handle_traceback"] = handle_tb
    log_lines = [message]
    for key in sorted(context):
        if key in {"message", "exception"}:
            continue
        value = context[key]
        if key == "source_traceback":
            tb = "".join(traceback.format_list(value))
            value = "Object created at (most recent call last):\n" + tb.rstrip()
        elif key == "handle_traceback":
            tb = "".join(traceback.format_list(value))
            value = "Handle created at (most recent call last):\n" + tb.rstrip()
        else:
            value = repr(value)
        log_lines.append(f"{key}: {value}")
    logger.error("\n".join(log_lines), exc_info=exc_info)


def call_exception_handler(
    loop: asyncio.AbstractEventLoop, handler: ExceptionHandler | None, context: dict[str, Any]
) -> None:
    """Run `handler` (the loop's; None: the loop's default one) on `context`; never raises."""
    if handler is None:
        try:
            loop.default_exception_handler(context)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException:
            logger.error("Exception in default exception handler", exc_info=True)
        return
    try:
        thing = context.get("task") or context.get("future") or context.get("handle")
        ctx = thing.get_context() if thing is not None and hasattr(thing, "get_context") else None
        if ctx is not None and hasattr(ctx, "run"):
            ctx.run(handler, loop, context)
        else:
            handler(loop, context)
    except (SystemExit, KeyboardInterrupt):
        raise
    except BaseException as exc:
        try:
            loop.default_exception_handler(
                {"message": "Unhandled error in exception handler", "exception": exc, "context": context}
            )
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException:
            logger.error(
                "Exception in default exception handler while handling an unexpected error in custom exception handler",
                exc_info=True,
            )
