"""Make CPython's asyncio tests run the loop under test, and prove they do.

Role: everything the worker does to a fresh interpreter before a test module
runs: resolve the loop module, point asyncio's default policy at its
``new_event_loop()``, add the ``LoopUnderTest*`` classes described in
:mod:`compat.variants`, apply the documented harness shims, and verify the
whole arrangement (:func:`check_injection`).

Invariant owned here: if :func:`check_injection` returns, then
``asyncio.new_event_loop()``, ``asyncio.run()``, ``asyncio.Runner()`` and a
policy reset via ``set_event_loop_policy(None)`` all yield a loop of the
module under test, and the running-loop hooks of :mod:`compat.tracking` see
it run.  Otherwise it raises :class:`InjectionError` and nothing is run: a
runner that silently measured stock asyncio would be worse than none.
"""

from __future__ import annotations

import asyncio
import asyncio.unix_events
import importlib
import signal
import types
import unittest
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from compat import tracking, variants

LoopFactory = Callable[[], asyncio.AbstractEventLoop]


class InjectionError(RuntimeError):
    """The loop under test is not the loop the tests would run."""


@dataclass
class LoopUnderTest:
    name: str
    module: types.ModuleType
    factory: LoopFactory
    loop_type: type
    stock: bool
    shims: list[str] = field(default_factory=list)

    def owns(self, cls: type) -> bool:
        """Whether instances of ``cls`` are loops of the module under test."""
        if issubclass(cls, self.loop_type):
            return True
        if self.stock:
            return False
        package = self.name.split(".")[0]
        return any((getattr(base, "__module__", "") or "").split(".")[0] == package for base in cls.__mro__)


def _policy_class() -> type:
    # DefaultEventLoopPolicy is what set_event_loop_policy(None) re-creates,
    # so patching the class (not an instance) survives every policy reset.
    return asyncio.DefaultEventLoopPolicy


def load_loop(name: str) -> LoopUnderTest:
    """Import the loop module and patch asyncio to create its loops."""
    try:
        module = importlib.import_module(name)
    except Exception as exc:
        raise InjectionError(f"cannot import loop module {name!r}: {exc!r}") from exc
    factory = getattr(module, "new_event_loop", None)
    if not callable(factory):
        raise InjectionError(f"loop module {name!r} has no new_event_loop()")
    stock = module is asyncio
    try:
        probe = factory()
    except Exception as exc:
        raise InjectionError(f"{name}.new_event_loop() raised {exc!r}") from exc
    loop_type = type(probe)
    probe.close()
    if not isinstance(probe, asyncio.AbstractEventLoop):
        raise InjectionError(
            f"{name}.new_event_loop() returned {tracking.type_name(loop_type)}, "
            "which is not an asyncio.AbstractEventLoop"
        )
    if not stock and loop_type.__module__.split(".")[0] == "asyncio":
        raise InjectionError(
            f"{name}.new_event_loop() returned the stock asyncio loop "
            f"{tracking.type_name(loop_type)}: refusing to report stock asyncio "
            f"as {name!r}"
        )
    lut = LoopUnderTest(name=name, module=module, factory=factory, loop_type=loop_type, stock=stock)
    if not stock:
        _patch_policy(factory)
    return lut


def _patch_policy(factory: LoopFactory) -> None:
    policy_class = _policy_class()
    setattr(policy_class, "_loop_factory", staticmethod(factory))  # noqa: B010
    # The Unix subclass is the same object on Linux, but a platform where the
    # alias differs must not keep a stock factory somewhere in the MRO.
    unix_policy = getattr(asyncio.unix_events, "_UnixDefaultEventLoopPolicy", None)
    if unix_policy is not None and unix_policy is not policy_class:
        setattr(unix_policy, "_loop_factory", staticmethod(factory))  # noqa: B010


def apply_shims(lut: LoopUnderTest) -> None:
    """Harness shims for CPython test helpers that read asyncio internals.

    Each shim adapts a *helper* of ``test.test_asyncio.utils`` (never a test
    body) and is recorded in the results so a reader knows it was applied.
    """
    if lut.stock:
        return
    test_utils = importlib.import_module("test.test_asyncio.utils")
    case = test_utils.TestCase
    original = case.__dict__.get("close_loop")
    if isinstance(original, staticmethod):
        inner = original.__func__

        def close_loop(loop: Any) -> None:
            if hasattr(loop, "_default_executor"):
                inner(loop)
            else:
                # Take the helper's "no executor was created" path: running
                # shutdown_default_executor() here would create a task the
                # stock path never creates (and trip test task factories).
                inner(_ExecutorlessView(loop))

        case.close_loop = staticmethod(close_loop)
        lut.shims.append(
            "test_utils.TestCase.close_loop: a loop without the private "
            "_default_executor attribute is treated as having no default "
            "executor (loop.close() then shuts it down itself)"
        )


class _ExecutorlessView:
    """A loop seen through CPython's close_loop() with no executor to close."""

    _default_executor = None

    def __init__(self, loop: Any) -> None:
        self._loop = loop

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loop, name)


def _signal_state() -> dict[int, Any]:
    state: dict[int, Any] = {}
    for signum in signal.valid_signals():
        try:
            state[int(signum)] = signal.getsignal(signum)
        except (OSError, ValueError):
            continue
    wakeup = signal.set_wakeup_fd(-1)
    signal.set_wakeup_fd(wakeup)
    state[-1] = wakeup
    return state


def _restore_signal_state(before: dict[int, Any]) -> list[str]:
    """Undo signal changes the startup check left behind; say which."""
    after = _signal_state()
    leaked = []
    for signum, handler in before.items():
        if after.get(signum) == handler:
            continue
        if signum == -1:
            leaked.append(f"signal wakeup fd {handler} -> {after.get(signum)}")
            signal.set_wakeup_fd(handler)
        elif handler is not None:
            leaked.append(f"handler of {signal.Signals(signum).name}")
            signal.signal(signum, handler)
    return leaked


def check_injection(lut: LoopUnderTest) -> dict[str, Any]:
    """Prove that asyncio's entry points create and run the loop under test.

    The check itself runs the loop; any signal state it leaves behind is
    restored (and reported) so the first test starts from a clean process.
    """
    before = _signal_state()
    try:
        report = _check_injection(lut)
    finally:
        leaked = _restore_signal_state(before)
    report["signal state after check"] = ", ".join(leaked) if leaked else "unchanged"
    return report


def _check_injection(lut: LoopUnderTest) -> dict[str, Any]:
    report: dict[str, Any] = {}

    def expect(label: str, loop: asyncio.AbstractEventLoop) -> None:
        try:
            if not lut.owns(type(loop)):
                raise InjectionError(f"{label} created {tracking.type_name(type(loop))}, not a loop of {lut.name!r}")
        finally:
            loop.close()
        report[label] = tracking.type_name(type(loop))

    expect("asyncio.new_event_loop()", asyncio.new_event_loop())
    saved_policy = asyncio.get_event_loop_policy()
    asyncio.set_event_loop_policy(None)
    try:
        expect("new_event_loop() after set_event_loop_policy(None)", asyncio.new_event_loop())
        expect("DefaultEventLoopPolicy().new_event_loop()", _policy_class()().new_event_loop())
    finally:
        asyncio.set_event_loop_policy(saved_policy)

    runner = asyncio.Runner()
    try:
        expect_type = type(runner.get_loop())
        report["asyncio.Runner()"] = tracking.type_name(expect_type)
        if not lut.owns(expect_type):
            raise InjectionError(f"asyncio.Runner() created {tracking.type_name(expect_type)}")
    finally:
        runner.close()

    async def probe() -> type:
        return type(asyncio.get_running_loop())

    tracking.TRACKER.reset()
    ran = asyncio.run(probe())
    announced, seen = tracking.TRACKER.snapshot()
    tracking.TRACKER.reset()
    report["asyncio.run()"] = tracking.type_name(ran)
    if not lut.owns(ran):
        raise InjectionError(f"asyncio.run() ran {tracking.type_name(ran)}")
    if any(lut.owns(cls) for cls in announced):
        report["running-loop hook"] = "_set_running_loop"
    elif any(lut.owns(cls) for cls in seen):
        report["running-loop hook"] = "get_running_loop (fallback)"
    else:
        raise InjectionError(
            "the running-loop hooks never saw the loop under test run; per-test loop tracking would be blind"
        )
    return report


def _resolve_base(module: types.ModuleType, name: str) -> type | None:
    if name == "unittest.TestCase":
        return unittest.TestCase
    if name == "test_utils.TestCase":
        return importlib.import_module("test.test_asyncio.utils").TestCase  # type: ignore[no-any-return]
    value = getattr(module, name, None)
    return value if isinstance(value, type) else None


def rewrite_module(module: types.ModuleType, short_name: str, lut: LoopUnderTest) -> dict[str, Any]:
    """Add the LoopUnderTest class; return what to drop and the reference.

    Stock classes stay importable module attributes (tests refer to them,
    e.g. ``isinstance(self, SubprocessFastWatcherTests)``); they are only
    kept out of the loaded suite, via the returned ``drop`` set.
    """
    variant = variants.VARIANTS.get(short_name)
    present = {name for name, value in vars(module).items() if isinstance(value, type)}
    info: dict[str, Any] = {"drop": [], "added": None, "reference": None}
    if variant is None:
        return info
    info["reference"] = variants.reference_class(variant, present)
    if lut.stock:
        return info
    bases = [_resolve_base(module, name) for name in variant.bases]
    if any(base is None for base in bases):
        missing = [n for n, b in zip(variant.bases, bases, strict=True) if b is None]
        raise InjectionError(f"{short_name}: cannot build {variant.new_class}, missing {missing}")
    new_class = _build_class(variant, tuple(b for b in bases if b is not None), lut.factory, module.__name__)
    setattr(module, variant.new_class, new_class)
    info["drop"] = sorted(set(variant.drop) & present)
    info["added"] = variant.new_class
    return info


def _build_class(variant: variants.Variant, bases: tuple[type, ...], factory: LoopFactory, module_name: str) -> type:
    namespace: dict[str, Any] = {"__module__": module_name, "__qualname__": variant.new_class}
    if variant.hook in (variants.HOOK_CREATE_EVENT_LOOP, variants.HOOK_NEW_LOOP):

        def make_loop(self: Any) -> asyncio.AbstractEventLoop:
            return factory()

        namespace[variant.hook] = make_loop
        return type(variant.new_class, bases, namespace)

    cls = type(variant.new_class, bases, namespace)

    def setUp(self: Any) -> None:
        super(cls, self).setUp()  # type: ignore[arg-type]  # mypy: type() result
        self.loop = factory()
        self.set_event_loop(self.loop)

    setattr(cls, "setUp", setUp)  # noqa: B010
    return cls


def import_test_module(package: str, short_name: str) -> types.ModuleType:
    return importlib.import_module(f"{package}.{short_name}")
