"""Which CPython asyncio test modules count towards which score tier.

Role: the single classification table of ``test.test_asyncio`` modules into
*behavioural* (what any asyncio event loop must do) and *implementation*
(tests that reach into CPython's private asyncio internals or platform-only
classes, so a third-party loop is not expected to pass them).

Invariant owned here: every module present in the installed
``test.test_asyncio`` package gets exactly one tier.  Modules this table does
not know yet (new CPython versions) are classified as implementation, with a
warning, so an unknown module can never inflate the behavioural score.
"""

from __future__ import annotations

import pkgutil
import warnings
from dataclasses import dataclass

BEHAVIOURAL = "behavioural"
IMPLEMENTATION = "implementation"
TIERS = (BEHAVIOURAL, IMPLEMENTATION)

TEST_PACKAGE = "test.test_asyncio"


@dataclass(frozen=True)
class TierEntry:
    tier: str
    reason: str


# Decided per module by reading it on 3.11 to 3.15.  A module that only
# partially mocks internals stays behavioural when most of it drives a real
# loop through public API; the per-test "exercised" column shows the rest.
TIER_TABLE: dict[str, TierEntry] = {
    # --- behavioural ---------------------------------------------------------
    "test_buffered_proto": TierEntry(BEHAVIOURAL, "BufferedProtocol over a real TCP connection"),
    "test_context": TierEntry(BEHAVIOURAL, "decimal context isolation across tasks"),
    "test_eager_task_factory": TierEntry(BEHAVIOURAL, "eager_task_factory semantics on a real loop (3.12+)"),
    "test_events": TierEntry(BEHAVIOURAL, "the core loop API: callbacks, I/O, servers, pipes, signals"),
    "test_futures": TierEntry(BEHAVIOURAL, "Future semantics, C and Python implementations"),
    "test_free_threading": TierEntry(BEHAVIOURAL, "tasks, all_tasks and futures raced from threads (3.14+)"),
    "test_futures2": TierEntry(BEHAVIOURAL, "Future tracebacks/repr under IsolatedAsyncioTestCase"),
    "test_graph": TierEntry(BEHAVIOURAL, "capture_call_graph/print_call_graph of running tasks (3.14+)"),
    "test_locks": TierEntry(BEHAVIOURAL, "Lock/Event/Condition/Semaphore/Barrier semantics"),
    "test_pep492": TierEntry(BEHAVIOURAL, "async/await protocol integration with the loop"),
    "test_protocols": TierEntry(BEHAVIOURAL, "public protocol base classes"),
    "test_queues": TierEntry(BEHAVIOURAL, "asyncio.Queue family semantics"),
    "test_runners": TierEntry(BEHAVIOURAL, "asyncio.run and asyncio.Runner public API"),
    "test_sendfile": TierEntry(BEHAVIOURAL, "loop.sendfile and loop.sock_sendfile"),
    "test_server": TierEntry(BEHAVIOURAL, "start_server/start_unix_server and Server lifecycle"),
    "test_server_context": TierEntry(BEHAVIOURAL, "contextvars of servers and their connections' callbacks (3.15+)"),
    "test_sock_lowlevel": TierEntry(BEHAVIOURAL, "loop.sock_* coroutine API on real sockets"),
    "test_ssl": TierEntry(BEHAVIOURAL, "TLS transports end to end"),
    "test_staggered": TierEntry(BEHAVIOURAL, "staggered_race scheduling (3.13+)"),
    "test_streams": TierEntry(BEHAVIOURAL, "StreamReader/StreamWriter over real connections"),
    "test_subprocess": TierEntry(BEHAVIOURAL, "subprocess_exec/shell and asyncio.subprocess"),
    "test_taskgroups": TierEntry(BEHAVIOURAL, "TaskGroup semantics"),
    "test_tasks": TierEntry(BEHAVIOURAL, "Task, gather, wait, shield, run_coroutine_threadsafe"),
    "test_threads": TierEntry(BEHAVIOURAL, "asyncio.to_thread and the default executor"),
    "test_timeouts": TierEntry(BEHAVIOURAL, "asyncio.timeout/timeout_at semantics"),
    "test_transports": TierEntry(BEHAVIOURAL, "public transport base classes"),
    "test_waitfor": TierEntry(BEHAVIOURAL, "asyncio.wait_for semantics"),
    # --- implementation ------------------------------------------------------
    "test_base_events": TierEntry(IMPLEMENTATION, "mocks BaseEventLoop private methods and selectors"),
    "test_proactor_events": TierEntry(IMPLEMENTATION, "mocks proactor transports' private state"),
    "test_selector_events": TierEntry(IMPLEMENTATION, "mocks BaseSelectorEventLoop and selector transports"),
    "test_sslproto": TierEntry(IMPLEMENTATION, "drives asyncio.sslproto.SSLProtocol internals"),
    "test_tools": TierEntry(IMPLEMENTATION, "asyncio.tools formats canned task tables: no loop runs (3.14+)"),
    "test_unix_events": TierEntry(IMPLEMENTATION, "mocks _UnixSelectorEventLoop, watchers and os calls"),
    "test_windows_events": TierEntry(IMPLEMENTATION, "Windows-only proactor internals"),
    "test_windows_utils": TierEntry(IMPLEMENTATION, "Windows-only pipe helpers"),
}

UNKNOWN_REASON = "not in compat/tiers.py: classified as implementation until reviewed"


def installed_modules() -> list[str]:
    """Test modules of the interpreter in use, sorted by name."""
    import importlib

    package = importlib.import_module(TEST_PACKAGE)
    return sorted(info.name for info in pkgutil.iter_modules(package.__path__) if info.name.startswith("test_"))


def classify(module: str, *, warn: bool = True) -> TierEntry:
    entry = TIER_TABLE.get(module)
    if entry is not None:
        return entry
    if warn:
        warnings.warn(
            f"compat: unknown asyncio test module {module!r}: {UNKNOWN_REASON}",
            stacklevel=2,
        )
    return TierEntry(IMPLEMENTATION, UNKNOWN_REASON)


def modules_for(tier: str, available: list[str] | None = None) -> list[str]:
    """Installed modules in ``tier`` ("all" selects every tier)."""
    names = installed_modules() if available is None else available
    if tier == "all":
        return list(names)
    return [name for name in names if classify(name).tier == tier]
