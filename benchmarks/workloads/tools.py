"""Workloads with one of looplet's tools switched on: the cost of looking.

Role: ``with_tool`` runs another workload (``inner``, a ``module:function``) on a loop
that has timing (``loop.enable_timing()``) or a trace (``looplet.trace(...)``) on, so
the table shows the same work with the tool off (the plain row) and on (this row),
measured in the same run. Loops without the tool (asyncio, uvloop) are
``unsupported`` here.

Invariant owned here: the tool is on for the whole timed part of the inner workload
and nothing else differs from the plain row; a trace is written to a temporary file
after the inner workload stopped its clock, so writing it is not measured.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import tempfile
from typing import Any

from benchmarks.worker import resolve
from benchmarks.workloads.base import Context, Measurement, Unsupported

TOOLS = ("timing", "trace")


async def with_tool(ctx: Context, n: int, *, tool: str, inner: str, **params: Any) -> Measurement:
    """``inner(ctx, n, **params)`` with ``tool`` on."""
    if tool not in TOOLS:
        raise ValueError(f"unknown tool {tool!r}; known: {', '.join(TOOLS)}")
    loop: Any = asyncio.get_running_loop()
    if not hasattr(loop, "enable_timing"):
        raise Unsupported(f"{type(loop).__name__} has no {tool} to switch on")
    workload = resolve(inner)
    if tool == "timing":
        loop.enable_timing()
        result: Measurement = await workload(ctx, n, **params)
        loop.enable_timing(False)
        return result
    # Imported by name: the harness type-checks on its own, not through looplet's code.
    trace = importlib.import_module("looplet").trace
    fd, path = tempfile.mkstemp(suffix=".json", prefix="looplet-bench-trace-")
    os.close(fd)
    try:
        with trace(path):
            result = await workload(ctx, n, **params)
        return result
    finally:
        os.unlink(path)
