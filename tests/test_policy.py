"""looplet/policy.py: `looplet.EventLoopPolicy` and `looplet.install()`.

The policy, set with `asyncio.set_event_loop_policy` or by `looplet.install()`, makes
`asyncio.new_event_loop()` and `asyncio.run()` run on looplet, and stock asyncio again
once the default policy is back. From 3.14 on, both warn as asyncio's own policy API
does.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys

import pytest
from support import describe

import looplet
from looplet import _asyncio

#: asyncio deprecates its event loop policies from 3.14 (looplet's policy with them).
POLICIES_DEPRECATED = sys.version_info >= (3, 14)


def policy_call():
    """What a call of the policy API raises around it: a DeprecationWarning from 3.14."""
    return pytest.warns(DeprecationWarning, match="3.16") if POLICIES_DEPRECATED else contextlib.nullcontext()


@pytest.fixture
def default_policy():
    """Restore asyncio's default policy (and no current loop) after the test."""
    yield
    _asyncio.set_event_loop_policy(None)


def test_event_loop_policy(leakcheck, default_policy):
    with policy_call():
        policy_class = looplet.EventLoopPolicy
    with policy_call():
        asyncio.set_event_loop_policy(policy_class())
    assert isinstance(_asyncio.get_event_loop_policy(), policy_class)
    loop = asyncio.new_event_loop()
    try:
        assert type(loop) is looplet.EventLoop
    finally:
        loop.close()
    kind, running, _ = asyncio.run(describe())
    assert (kind, running) == (looplet.EventLoop, True)


def test_install(leakcheck, default_policy):
    with policy_call():
        looplet.install()
    with policy_call():
        policy_class = looplet.EventLoopPolicy
    assert isinstance(_asyncio.get_event_loop_policy(), policy_class)
    assert asyncio.run(describe())[0] is looplet.EventLoop
    _asyncio.set_event_loop_policy(None)
    # Back to stock asyncio.
    assert asyncio.run(describe())[0] is not looplet.EventLoop
