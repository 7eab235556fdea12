"""Per-loop test classes of CPython's asyncio tests, and how they are remapped.

Role: pure data describing, for each test module that instantiates its test
mixins once per stock loop flavour (epoll/poll/select selector loops, child
watcher flavours, proactor), which stock classes exist, which mixins they are
built from, and which stock class stands for the loop under test when the
baseline (stock asyncio, stock structure) is compared with another loop.

Invariant owned here: a test id is comparable across runs only through
:func:`canonical_id`.  A run with the stock structure (``--loop asyncio``)
keeps CPython's classes; a run of another loop replaces every stock variant
with one ``LoopUnderTest*`` class.  ``canonical_id`` maps the reference
variant of a stock run onto the ``LoopUnderTest*`` name and maps the other
stock variants to ``None`` (they test stock selectors or child watchers, not
an event loop a third party can provide), so both runs count the same tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

STRUCTURE_STOCK = "stock"
STRUCTURE_LOOP_UNDER_TEST = "loop-under-test"

# How the built class gets its loop: override create_event_loop() (the
# test_events/test_sock_lowlevel/test_sendfile mixins), new_loop() (the
# functional mixins), or create it in setUp() like CPython's Windows-only
# SubprocessProactorTests does.
HOOK_CREATE_EVENT_LOOP = "create_event_loop"
HOOK_NEW_LOOP = "new_loop"
HOOK_SETUP = "setUp"

_SELECTOR_CLASSES = (
    "KqueueEventLoopTests",
    "EPollEventLoopTests",
    "PollEventLoopTests",
    "SelectEventLoopTests",
    "ProactorEventLoopTests",
)
# The selector asyncio.new_event_loop() picks (selectors.DefaultSelector),
# in the order DefaultSelector prefers them.
_SELECTOR_REFERENCE = (
    "EPollEventLoopTests",
    "KqueueEventLoopTests",
    "PollEventLoopTests",
    "SelectEventLoopTests",
)


@dataclass(frozen=True)
class Variant:
    """How one module's per-loop classes become one loop-under-test class."""

    module: str
    new_class: str
    # Names looked up in the test module; "test_utils.TestCase" and
    # "unittest.TestCase" name the two shared base classes.
    bases: tuple[str, ...]
    hook: str
    drop: tuple[str, ...]
    reference: tuple[str, ...]
    why: str


VARIANTS: dict[str, Variant] = {
    variant.module: variant
    for variant in (
        Variant(
            module="test_events",
            new_class="LoopUnderTestEventLoopTests",
            # Not UnixEventLoopTestsMixin: it only installs asyncio's
            # SafeChildWatcher, whose SIGCHLD handler would replace the
            # loop's own child reaping; the loop under test owns that.
            bases=("EventLoopTestsMixin", "SubprocessTestsMixin", "test_utils.TestCase"),
            hook=HOOK_CREATE_EVENT_LOOP,
            drop=_SELECTOR_CLASSES,
            reference=_SELECTOR_REFERENCE,
            why="one class per stock selector",
        ),
        Variant(
            module="test_sock_lowlevel",
            new_class="LoopUnderTestSockTests",
            bases=("BaseSockTestsMixin", "test_utils.TestCase"),
            hook=HOOK_CREATE_EVENT_LOOP,
            drop=_SELECTOR_CLASSES,
            reference=_SELECTOR_REFERENCE,
            why="one class per stock selector",
        ),
        Variant(
            module="test_sendfile",
            new_class="LoopUnderTestSendfileTests",
            bases=("SendfileTestsBase", "test_utils.TestCase"),
            hook=HOOK_CREATE_EVENT_LOOP,
            drop=_SELECTOR_CLASSES,
            reference=_SELECTOR_REFERENCE,
            why="one class per stock selector",
        ),
        Variant(
            module="test_subprocess",
            new_class="LoopUnderTestSubprocessTests",
            bases=("SubprocessMixin", "test_utils.TestCase"),
            hook=HOOK_SETUP,
            drop=(
                "SubprocessThreadedWatcherTests",
                "SubprocessMultiLoopWatcherTests",
                "SubprocessSafeWatcherTests",
                "SubprocessFastWatcherTests",
                "SubprocessPidfdWatcherTests",
                "SubprocessProactorTests",
                # Both test asyncio's child-watcher policy API itself, which
                # only stock _UnixSelectorEventLoop consults.
                "GenericWatcherTests",
                "MultiLoopChildWatcherTests",
            ),
            reference=("SubprocessThreadedWatcherTests",),
            why="one class per stock child watcher",
        ),
        Variant(
            module="test_buffered_proto",
            new_class="LoopUnderTestBufferedProtocolTests",
            bases=("BaseTestBufferedProtocol", "unittest.TestCase"),
            hook=HOOK_NEW_LOOP,
            drop=("BufferedProtocolSelectorTests", "BufferedProtocolProactorTests"),
            reference=("BufferedProtocolSelectorTests",),
            why="one class per stock loop flavour",
        ),
        Variant(
            module="test_server",
            new_class="LoopUnderTestStartServerTests",
            # The selector class adds test_start_unix_server_1 of its own,
            # so subclass it rather than rebuild it from BaseStartServer.
            bases=("SelectorStartServerTests",),
            hook=HOOK_NEW_LOOP,
            drop=("SelectorStartServerTests", "ProactorStartServerTests"),
            reference=("SelectorStartServerTests",),
            why="one class per stock loop flavour",
        ),
        Variant(
            module="test_sslproto",
            new_class="LoopUnderTestStartTLSTests",
            bases=("BaseStartTLS", "unittest.TestCase"),
            hook=HOOK_NEW_LOOP,
            drop=("SelectorStartTLSTests", "ProactorStartTLSTests"),
            reference=("SelectorStartTLSTests",),
            why="one class per stock loop flavour",
        ),
    )
}


def reference_class(variant: Variant, present: set[str]) -> str | None:
    """The stock class whose outcomes stand for ``variant.new_class``."""
    for name in variant.reference:
        if name in present:
            return name
    return None


def canonical_id(test_id: str, structure: str, reference: Mapping[str, str | None]) -> str | None:
    """Comparable id of ``test_id``, or None when it must not be scored.

    ``reference`` maps module -> reference stock class, as recorded by the
    worker of a stock-structure run (what was present depends on platform).
    """
    if structure != STRUCTURE_STOCK:
        return test_id
    parts = test_id.split(".")
    if len(parts) < 3:
        return test_id
    module, cls = parts[0], parts[1]
    variant = VARIANTS.get(module)
    if variant is None or cls not in variant.drop:
        return test_id
    if cls != reference.get(module):
        return None
    return ".".join([module, variant.new_class, *parts[2:]])
