"""asyncio's internals, bound once: the only module of looplet that imports asyncio's private names.

looplet is an event loop of its own that drives asyncio's own `Handle`, `Future`,
`Task`, `Server`, TLS layer (`sslproto`) and subprocess glue (`base_subprocess`), so
it depends on parts of asyncio that are not public API: slots it fills by hand,
constructors and methods it calls, a class it subclasses, constants it mirrors, and
the private spellings of the policy API. Every one of them is bound here, to a
module-level name, and every other module of looplet imports it from here; public
names (`asyncio.Handle`, `asyncio.Future`, the transport and protocol ABCs, ...) are
imported from asyncio as usual.

The invariant this module owns: each shape looplet relies on (a slot, a signature, a
method, an enum member, a constant) is checked when this module is imported, which
`import looplet` does before anything else of looplet. On a Python whose asyncio differs, the import
fails with an `UnsupportedPython` (an ImportError) that names the Python version and
what changed, instead of looplet failing later, inside some callback.

Binding happens once, at import: a name used on the hot path is a plain module global
holding asyncio's own object, as cheap as asyncio's own reference to it. Where asyncio
changed between versions, the gate is here too, decided from the shape found (a
signature) where that is possible and from `sys.version_info` where it is not.
"""

from __future__ import annotations

import asyncio
import enum
import inspect
import sys
from asyncio import (
    base_events,
    base_subprocess,
    constants,
    coroutines,
    events,
    format_helpers,
    futures,
    sslproto,
    staggered,
    tasks,
    transports,
    trsock,
    unix_events,
)
from collections.abc import Callable, Iterable
from typing import Any, Final

#: The running Python's version, as error messages name it.
PYTHON_VERSION: Final = sys.version.split()[0]


class UnsupportedPython(ImportError):
    """asyncio on the running Python does not have a shape looplet relies on."""


def unsupported(what: str) -> UnsupportedPython:
    """The error for a shape that differs: `what` says which and how."""
    return UnsupportedPython(f"looplet does not support Python {PYTHON_VERSION}: {what}")


def _name(owner: object) -> str:
    if inspect.ismodule(owner):
        return owner.__name__
    if inspect.isclass(owner):
        return f"{owner.__module__}.{owner.__qualname__}"
    return repr(owner)


def require(owner: object, attr: str) -> Any:
    """`owner.attr`, or UnsupportedPython if asyncio no longer has it."""
    try:
        return getattr(owner, attr)
    except AttributeError:
        raise unsupported(f"{_name(owner)} has no attribute {attr!r}") from None


# -- the checks (functions of the object checked, so that tests can hand them others) --


def slots_of(cls: type) -> set[str]:
    """Every slot `cls` and its bases declare."""
    found: set[str] = set()
    for klass in cls.__mro__:
        slots = vars(klass).get("__slots__", ())
        found.update((slots,) if isinstance(slots, str) else slots)
    found.discard("__weakref__")
    found.discard("__dict__")
    return found


def check_slots(cls: type, expected: Iterable[str], *, base: type | None = None) -> None:
    """`cls` has exactly the slots `expected` (beyond those of `base`).

    Exactly, not at least: looplet fills every slot of a handle it builds without
    calling `__init__`, so a slot asyncio adds would be left unset.
    """
    have = slots_of(cls) - (slots_of(base) if base is not None else set())
    want = set(expected)
    for slot in sorted(want - have):
        raise unsupported(f"{_name(cls)} has no slot {slot!r}")
    for slot in sorted(have - want):
        raise unsupported(f"{_name(cls)} has a new slot {slot!r}, which looplet's hand-built handles would leave unset")


def check_signature(
    func: Callable[..., object],
    where: str,
    positional: Iterable[str] = (),
    keywords: Iterable[str] = (),
    *,
    method: bool = False,
) -> inspect.Signature:
    """`func` takes `positional` first, in that order, accepts `keywords` by name, and
    needs nothing else (every other parameter has a default).

    `method`: `func` is a function defined in a class; its first parameter (self) is
    not counted.
    """
    sig = inspect.signature(func)
    params = list(sig.parameters.values())
    if method:
        params = params[1:]
    shown = f"{where}{sig}"
    plain = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    wanted = list(positional)
    got = [p.name for p in params[: len(wanted)] if p.kind in plain]
    if got != wanted:
        raise unsupported(f"{shown} no longer takes ({', '.join(wanted)}) first, as looplet passes them")
    by_name = {p.name: p for p in params}
    takes_any_keyword = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)
    used = set(wanted)
    for kw in keywords:
        used.add(kw)
        if kw in by_name and by_name[kw].kind in named:
            continue
        if kw not in by_name and takes_any_keyword:
            continue
        raise unsupported(f"{shown} has no keyword argument {kw!r}, which looplet passes")
    for p in params:
        if p.name in used or p.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            continue
        if p.default is inspect.Parameter.empty:
            raise unsupported(f"{shown} needs an argument {p.name!r}, which looplet does not pass")
    return sig


def check_refers_to(func: Callable[..., object], where: str, name: str, why: str) -> None:
    """`func`'s code uses the attribute or global `name` (a store, a load or a call)."""
    code = getattr(func, "__code__", None)
    if code is None or name not in code.co_names:
        raise unsupported(f"{where} no longer uses {name!r}, {why}")


def check_methods(cls: type, *names: str) -> None:
    """`cls` has each of the methods `names` (looplet calls or overrides them)."""
    for name in names:
        if not callable(getattr(cls, name, None)):
            raise unsupported(f"{_name(cls)} has no method {name!r}")


# -- handles -------------------------------------------------------------------------------

#: The slots of `asyncio.Handle`, which looplet's own handles (engine/handles.py) copy;
#: the scheduler reads `_context`, `_callback`, `_args`, `_cancelled`, `_loop` and
#: `_source_traceback` when it runs one of asyncio's (debug mode, 3.14's thread-safe).
HANDLE_SLOTS: Final = ("_args", "_callback", "_cancelled", "_context", "_loop", "_repr", "_source_traceback")
#: The slots `asyncio.TimerHandle` adds; the timer queue reads and writes both.
TIMER_HANDLE_SLOTS: Final = ("_scheduled", "_when")

check_slots(asyncio.Handle, HANDLE_SLOTS)
check_slots(asyncio.TimerHandle, TIMER_HANDLE_SLOTS, base=asyncio.Handle)
check_methods(asyncio.Handle, "_run", "cancel")
#: 3.14+: the handle `call_soon_threadsafe` returns, whose lock makes `cancel()` and
#: `cancelled()` from another thread wait while its callback runs; None before 3.14.
#: Built by its own `__init__` (never by hand) and run through its own `_run`.
ThreadSafeHandle: type[asyncio.Handle] | None = getattr(events, "_ThreadSafeHandle", None)
if ThreadSafeHandle is not None:
    check_methods(ThreadSafeHandle, "_run", "cancel", "cancelled")

# A cancelled timer reports back to its loop: looplet's loop provides the hook.
check_refers_to(
    asyncio.TimerHandle.cancel,
    "asyncio.TimerHandle.cancel",
    "_timer_handle_cancelled",
    "the loop hook through which looplet's timer queue counts cancelled timers",
)

_format_callback_source: Final[Callable[..., str]] = require(format_helpers, "_format_callback_source")
# 3.13 formats a callback with the loop's debug flag (long reprs of partials and methods).
_FORMAT_TAKES_DEBUG: Final = (
    "debug"
    in check_signature(
        _format_callback_source, "asyncio.format_helpers._format_callback_source", ("func", "args")
    ).parameters
)


def format_callback_source(callback: object, args: object, debug: bool) -> str:
    """How asyncio's `Handle._run` names a callback that raised."""
    if _FORMAT_TAKES_DEBUG:
        return _format_callback_source(callback, args, debug=debug)
    return _format_callback_source(callback, args)


# -- the running loop, debug mode, coroutine functions, tasks -------------------------------

# These three are looked up in asyncio's modules on each call, as asyncio's own loops
# do, rather than bound: code that replaces them must reach looplet's loops too
# (CPython's tests put the pure-Python running-loop functions in place, and patch
# coroutines._is_debug_mode). None is on the hot path: each runs once per run_forever,
# run_until_complete or loop.
require(events, "_get_running_loop")
require(events, "_set_running_loop")
require(coroutines, "_is_debug_mode")


def get_running_loop_or_none() -> asyncio.AbstractEventLoop | None:
    """The running loop of this thread, or None (asyncio's running-loop slot)."""
    return events._get_running_loop()


def set_running_loop(loop: asyncio.AbstractEventLoop | None) -> None:
    """Make `loop` (or None) the running loop of this thread."""
    events._set_running_loop(loop)


def is_debug_mode() -> bool:
    """Whether a new loop starts in debug mode: -X dev, or PYTHONASYNCIODEBUG unless -E."""
    return bool(coroutines._is_debug_mode())  # type: ignore[attr-defined]  # typeshed omits it


#: How far back debug mode records where coroutines and handles were created.
DEBUG_STACK_DEPTH: Final[int] = require(constants, "DEBUG_STACK_DEPTH")

# The marker a few objects carry to pass as coroutine functions (unittest.mock's
# AsyncMock and autospecced async functions set it). asyncio's own test, deprecated
# publicly in 3.14 and private (`coroutines._iscoroutinefunction`) from then on, is
# inspect's answer or this marker, on every Python looplet supports; an asyncio without
# the marker leaves inspect's answer (a fresh object() is no object's marker).
_IS_COROUTINE: Final = getattr(coroutines, "_is_coroutine", object())


def iscoroutinefunction(func: object) -> bool:
    """asyncio's test for "coroutines cannot be used with call_soon()" and add_signal_handler()."""
    return inspect.iscoroutinefunction(func) or getattr(func, "_is_coroutine", None) is _IS_COROUTINE


# A Task must not log "exception was never retrieved" when run_until_complete raises
# that exception to its caller: asyncio turns the log off through this attribute.
if not hasattr(asyncio.Task, "_log_destroy_pending"):
    raise unsupported("asyncio.Task has no attribute '_log_destroy_pending'")

if sys.version_info >= (3, 13):

    def set_task_name(task: Any, name: str) -> None:
        """Name a task a task factory made (3.13+: every task has set_name())."""
        task.set_name(name)

else:
    #: Name a task a task factory made; 3.11 and 3.12 warn (rather than fail) for an
    #: object without set_name(), through this helper.
    set_task_name: Final[Callable[[Any, str], None]] = require(tasks, "_set_task_name")


# -- networking ------------------------------------------------------------------------------

#: The getaddrinfo shortcut for a numeric host (None for a name to resolve).
ipaddr_info: Final[Callable[..., tuple[Any, Any, int, str, Any] | None]] = require(base_events, "_ipaddr_info")
check_signature(
    ipaddr_info,
    "asyncio.base_events._ipaddr_info",
    ("host", "port", "family", "type", "proto", "flowinfo", "scopeid"),
)

#: The class of the servers create_server returns (public); its constructor is not.
Server = asyncio.Server
check_signature(
    Server.__init__,
    "asyncio.Server.__init__",
    (
        "loop",
        "sockets",
        "protocol_factory",
        "ssl_context",
        "backlog",
        "ssl_handshake_timeout",
        "ssl_shutdown_timeout",
    ),
    method=True,
)
# A Server drives its loop through these two, which looplet's loop implements (net.py).
check_refers_to(
    require(Server, "_start_serving"),
    "asyncio.Server._start_serving",
    "_start_serving",
    "the loop method through which a server starts accepting (looplet implements it)",
)
check_refers_to(
    Server.close,
    "asyncio.Server.close",
    "_stop_serving",
    "the loop method through which a server stops accepting (looplet implements it)",
)

_server_attach: Final[Callable[..., None]] = require(Server, "_attach")
_server_detach: Final[Callable[..., None]] = require(Server, "_detach")


def _server_tracks_transports(attach: Callable[..., None], detach: Callable[..., None]) -> bool:
    # 3.13 made a server keep its transports (for close_clients and abort_clients):
    # _attach(transport) and _detach(transport); 3.11 and 3.12 count them.
    attach_params = list(inspect.signature(attach).parameters)[1:]
    detach_params = list(inspect.signature(detach).parameters)[1:]
    if attach_params == detach_params == ["transport"]:
        return True
    if attach_params == detach_params == []:
        return False
    raise unsupported(
        f"asyncio.Server._attach{inspect.signature(attach)} and _detach{inspect.signature(detach)} "
        "take neither nothing nor a transport"
    )


SERVER_TRACKS_TRANSPORTS: Final = _server_tracks_transports(_server_attach, _server_detach)


def _attach_counted(server: Any, transport: Any) -> None:
    _server_attach(server)


def _detach_counted(server: Any, transport: Any) -> None:
    _server_detach(server)


#: Tell `server` that `transport` serves one of its connections (asyncio's own method
#: where it takes the transport, so no extra call).
server_attach: Final[Callable[[Any, Any], None]] = _server_attach if SERVER_TRACKS_TRANSPORTS else _attach_counted
#: Tell `server` that `transport`'s connection is over.
server_detach: Final[Callable[[Any, Any], None]] = _server_detach if SERVER_TRACKS_TRANSPORTS else _detach_counted


#: The `socket` extra info of a transport: a socket wrapper that refuses I/O calls.
require(trsock, "TransportSocket")
TransportSocket = trsock.TransportSocket
check_signature(TransportSocket, "asyncio.trsock.TransportSocket", ("sock",))

#: Complete a waiter unless its caller gave up on it (cancelled it): asyncio's own,
#: called as `loop.call_soon(set_result_unless_cancelled, waiter, None)`, as there.
set_result_unless_cancelled: Final[Callable[[asyncio.Future[Any], Any], None]] = require(
    futures, "_set_result_unless_cancelled"
)
check_signature(set_result_unless_cancelled, "asyncio.futures._set_result_unless_cancelled", ("fut", "result"))

#: Happy eyeballs: start the attempts `delay` apart, keep the first to connect.
require(staggered, "staggered_race")
staggered_race: Final = staggered.staggered_race
check_signature(staggered_race, "asyncio.staggered.staggered_race", ("coro_fns", "delay"), ("loop",))

#: TLS: asyncio's protocol layer, run over one of looplet's transports.
require(sslproto, "SSLProtocol")
SSLProtocol = sslproto.SSLProtocol
check_signature(
    SSLProtocol,
    "asyncio.sslproto.SSLProtocol",
    ("loop", "app_protocol", "sslcontext", "waiter", "server_side", "server_hostname"),
    ("ssl_handshake_timeout", "ssl_shutdown_timeout", "call_connection_made"),
)
check_refers_to(
    SSLProtocol.__init__,
    "asyncio.sslproto.SSLProtocol.__init__",
    "_app_transport",
    "the transport looplet hands the application (as asyncio's own loops do)",
)

#: asyncio's write flow control, which asyncio's own transports carry (TLS's, over a
#: looplet transport): sendfile's fallback accepts a transport that has it.
require(transports, "_FlowControlMixin")
FlowControlMixin = transports._FlowControlMixin
if not issubclass(FlowControlMixin, asyncio.Transport):
    raise unsupported("asyncio.transports._FlowControlMixin is no longer an asyncio.Transport")

#: How a transport says whether loop.sendfile() may use os.sendfile on it.
require(constants, "_SendfileMode")
SendfileMode = constants._SendfileMode
for _member in ("UNSUPPORTED", "TRY_NATIVE", "FALLBACK"):
    require(SendfileMode, _member)
del _member

SSL_HANDSHAKE_TIMEOUT: Final[float] = require(constants, "SSL_HANDSHAKE_TIMEOUT")
SSL_SHUTDOWN_TIMEOUT: Final[float] = require(constants, "SSL_SHUTDOWN_TIMEOUT")
#: How long a server stops accepting after running out of fds.
ACCEPT_RETRY_DELAY: Final[float] = require(constants, "ACCEPT_RETRY_DELAY")
#: Writes after the connection was lost are dropped silently this many times, then logged.
LOG_THRESHOLD_FOR_CONNLOST_WRITES: Final[int] = require(constants, "LOG_THRESHOLD_FOR_CONNLOST_WRITES")
#: The buffer sock_sendfile reads the file through when os.sendfile cannot be used.
SENDFILE_FALLBACK_READBUFFER_SIZE: Final[int] = require(constants, "SENDFILE_FALLBACK_READBUFFER_SIZE")


def closes_socket_of_failed_transport(create_connection_transport: Callable[..., object]) -> bool:
    """Whether asyncio closes the socket `_create_connection_transport` was given when no
    transport could be made of it (the protocol factory raised): newer releases do, from
    some 3.14 patch release on; older ones leave it open, even a socket the caller passed in.

    Decided from the function's source, the only place the change shows; without the
    source, from the version.
    """
    try:
        source = inspect.getsource(create_connection_transport)
    except (OSError, TypeError):
        return sys.version_info >= (3, 14)
    head = source.split("await waiter", 1)[0]
    return "sock.close()" in head


#: 3.15+: each stream socket transport runs all its callbacks in one context, a copy of
#: the connecting caller's or, for an accepted connection, of the context the Server
#: was made in; before, each registration copied the context current at that moment.
TRANSPORTS_HAVE_CONTEXT: Final = (
    "context" in inspect.signature(require(base_events.BaseEventLoop, "_create_connection_transport")).parameters
)

#: 3.14+: sendfile leaves the file's position at offset + bytes sent even when it sent
#: nothing, and the fallback seeks to `offset` first even when it is 0; before, the
#: position moved only when a byte went out. Decided from asyncio's helper's signature
#: (the bytes sent were its third parameter while they decided).
SENDFILE_ALWAYS_SETS_POSITION: Final = (
    "total_sent"
    not in inspect.signature(require(unix_events._UnixSelectorEventLoop, "_sock_sendfile_update_filepos")).parameters
)

#: asyncio's own `BaseEventLoop.sendfile`, called with looplet's loop as self: it picks
#: the loop's `_sendfile_native` or `_sendfile_fallback` (looplet's), and the zero-copy
#: path runs inside it, where detectors of blocking calls (blockbuster) allow
#: os.sendfile by asyncio's file and function names.
base_sendfile: Final[Callable[..., Any]] = require(base_events.BaseEventLoop, "sendfile")
check_signature(
    base_sendfile,
    "asyncio.BaseEventLoop.sendfile",
    ("transport", "file", "offset", "count"),
    ("fallback",),
    method=True,
)
for _name_used in ("_sendfile_native", "_sendfile_fallback"):
    check_refers_to(base_sendfile, "asyncio.BaseEventLoop.sendfile", _name_used, "a loop method looplet implements")
del _name_used

_UnixLoop = require(unix_events, "_UnixSelectorEventLoop")
#: The names asyncio's zero-copy `sock_sendfile` step uses on its `self`: itself (to
#: register its next step), the two helpers, and the loop's writer registration.
_SOCK_SENDFILE_STEP_USES: Final = (
    "_sock_sendfile_native_impl",
    "_sock_sendfile_update_filepos",
    "_sock_add_cancellation_callback",
    "add_writer",
    "remove_writer",
)
for _name_used in _SOCK_SENDFILE_STEP_USES:
    check_refers_to(
        require(_UnixLoop, "_sock_sendfile_native_impl"),
        "asyncio's _UnixSelectorEventLoop._sock_sendfile_native_impl",
        _name_used,
        "one of the names its step reaches through self",
    )
del _name_used
check_signature(
    _UnixLoop._sock_sendfile_native_impl,
    "asyncio's _UnixSelectorEventLoop._sock_sendfile_native_impl",
    ("fut", "registered_fd", "sock", "fileno", "offset", "count", "blocksize", "total_sent"),
    method=True,
)


class SockSendfileStep:
    """asyncio's own zero-copy `sock_sendfile` step, run on a looplet loop's writers.

    Each step makes one `os.sendfile` call, then registers its next step as the
    socket's writer or settles the future. os.sendfile is called inside asyncio's
    `_sock_sendfile_native_impl`, where detectors of blocking calls (blockbuster)
    allow it by asyncio's file and function names, so `loop.sock_sendfile` passes
    under them on looplet as on asyncio. The steps reach the loop only through
    `add_writer` and `remove_writer`, the loop's public methods, held here.
    """

    __slots__ = ("add_writer", "remove_writer")

    _sock_sendfile_native_impl = _UnixLoop._sock_sendfile_native_impl
    _sock_sendfile_update_filepos = require(_UnixLoop, "_sock_sendfile_update_filepos")
    _sock_add_cancellation_callback = require(_UnixLoop, "_sock_add_cancellation_callback")

    def __init__(self, add_writer: Callable[..., object], remove_writer: Callable[[int], object]) -> None:
        self.add_writer = add_writer
        self.remove_writer = remove_writer

    def start(
        self, fut: asyncio.Future[int], sock: object, fileno: int, offset: int, count: int | None, blocksize: int
    ) -> None:
        """The first step: `fut` gets the bytes sent, or the error."""
        self._sock_sendfile_native_impl(fut, None, sock, fileno, offset, count, blocksize, 0)


#: See closes_socket_of_failed_transport(): looplet does what the running asyncio does.
CLOSES_SOCKET_OF_FAILED_TRANSPORT: Final = closes_socket_of_failed_transport(
    require(base_events.BaseEventLoop, "_create_connection_transport")
)


# -- subprocesses ----------------------------------------------------------------------------

#: asyncio's subprocess transport: the glue between a Popen, its pipes and the protocol.
require(base_subprocess, "BaseSubprocessTransport")
BaseSubprocessTransport = base_subprocess.BaseSubprocessTransport
check_signature(
    BaseSubprocessTransport,
    "asyncio.base_subprocess.BaseSubprocessTransport",
    ("loop", "protocol", "args", "shell", "stdin", "stdout", "stderr", "bufsize"),
    ("waiter", "extra"),
)
# looplet overrides _start (which must set _proc) and reports the exit through
# _process_exited; _wait is how a failed start waits for the child it killed.
check_signature(
    require(BaseSubprocessTransport, "_start"),
    "asyncio.base_subprocess.BaseSubprocessTransport._start",
    ("args", "shell", "stdin", "stdout", "stderr", "bufsize"),
    method=True,
)
check_refers_to(
    BaseSubprocessTransport.__init__,
    "asyncio.base_subprocess.BaseSubprocessTransport.__init__",
    "_start",
    "the method looplet overrides to start the child",
)
check_refers_to(
    BaseSubprocessTransport.__init__,
    "asyncio.base_subprocess.BaseSubprocessTransport.__init__",
    "_proc",
    "the attribute looplet's _start sets to the Popen",
)
check_methods(BaseSubprocessTransport, "_process_exited", "_wait", "get_pid", "close")

# asyncio's own loop.subprocess_exec and subprocess_shell (its argument checks and debug
# log), run as methods of looplet's loop: the child starts inside them, where detectors
# of blocking calls (blockbuster) allow Popen's read of the exec-status pipe by asyncio's
# file and function names. They reach the loop only through the two methods checked.
#: asyncio's `BaseEventLoop.subprocess_exec`, called with looplet's loop as self.
base_subprocess_exec: Final[Callable[..., Any]] = require(base_events.BaseEventLoop, "subprocess_exec")
#: asyncio's `BaseEventLoop.subprocess_shell`, called with looplet's loop as self.
base_subprocess_shell: Final[Callable[..., Any]] = require(base_events.BaseEventLoop, "subprocess_shell")
for _where, _func, _first in (
    ("asyncio.BaseEventLoop.subprocess_exec", base_subprocess_exec, ("protocol_factory", "program")),
    ("asyncio.BaseEventLoop.subprocess_shell", base_subprocess_shell, ("protocol_factory", "cmd")),
):
    check_signature(
        _func,
        _where,
        _first,
        ("stdin", "stdout", "stderr", "universal_newlines", "shell", "bufsize", "encoding", "errors", "text"),
        method=True,
    )
    check_refers_to(_func, _where, "_make_subprocess_transport", "the loop method that starts the child (looplet's)")
    check_refers_to(_func, _where, "_log_subprocess", "the loop method of its debug log (looplet's)")
del _where, _func, _first


# -- event loop policies ---------------------------------------------------------------------


class PolicyAPI(enum.Enum):
    """Where asyncio's event loop policies stand on a Python version."""

    #: 3.11-3.13: current API.
    CURRENT = "current"
    #: 3.14, 3.15: the public names warn (DeprecationWarning, removal in 3.16); the
    #: private spellings asyncio itself uses do not.
    DEPRECATED = "deprecated"
    #: 3.16+: gone.
    REMOVED = "removed"


def policy_api(version: tuple[int, int]) -> PolicyAPI:
    """Where asyncio's policies stand on Python `version` (major, minor)."""
    if version < (3, 14):
        return PolicyAPI.CURRENT
    if version < (3, 16):
        return PolicyAPI.DEPRECATED
    return PolicyAPI.REMOVED


POLICY_API: Final = policy_api((sys.version_info[0], sys.version_info[1]))

#: asyncio's default policy class, and the policy getter and setter, by the spellings
#: that do not warn (None where policies are gone). The public names, which warn from
#: 3.14 on, are for looplet's users; looplet's own entry points use these.
DefaultEventLoopPolicy: type[asyncio.AbstractEventLoopPolicy] | None = None
get_event_loop_policy: Callable[[], asyncio.AbstractEventLoopPolicy] | None = None
set_event_loop_policy: Callable[[asyncio.AbstractEventLoopPolicy | None], None] | None = None
if POLICY_API is PolicyAPI.CURRENT:
    DefaultEventLoopPolicy = require(asyncio, "DefaultEventLoopPolicy")
    get_event_loop_policy = require(events, "get_event_loop_policy")
    set_event_loop_policy = require(events, "set_event_loop_policy")
elif POLICY_API is PolicyAPI.DEPRECATED:
    DefaultEventLoopPolicy = require(unix_events, "_DefaultEventLoopPolicy")
    get_event_loop_policy = require(events, "_get_event_loop_policy")
    set_event_loop_policy = require(events, "_set_event_loop_policy")
