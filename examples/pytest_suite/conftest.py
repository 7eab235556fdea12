"""An ordinary pytest-asyncio suite: tests a user would write, and nothing about looplet.

It runs unchanged on stock asyncio and on looplet; looplet's pytest plugin makes the
difference from the command line:

    python -m pytest examples/pytest_suite              # stock asyncio
    python -m pytest examples/pytest_suite --looplet    # looplet.EventLoop

The tests are written for `asyncio_mode = strict` (marked, fixtures from
`pytest_asyncio.fixture`), so they run in `auto` mode too.

`record_loop` exists for looplet's own test of the plugin (tests/test_pytest_plugin.py):
each test calls it from its body, and when the environment variable LOOP_LOG names a
file, it appends the test's id and the class of the loop running the test, one per line.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

import pytest


@pytest.fixture
def record_loop(request: pytest.FixtureRequest) -> Callable[[], None]:
    def record() -> None:
        cls = type(asyncio.get_running_loop())
        path = os.environ.get("LOOP_LOG")
        if path:
            with open(path, "a", encoding="utf-8") as log:
                log.write(f"{request.node.nodeid}\t{cls.__module__}.{cls.__qualname__}\n")

    return record
