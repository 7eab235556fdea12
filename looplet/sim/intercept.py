"""What a simulation replaces in the standard library while it runs, and only then.

A program under simulation reaches the world outside the loop through two stdlib
modules that the loop never sees: `time` (the real clock, and `time.sleep`, which would
stop every simulated host at once) and `socket` (a socket the program binds, listens on
or connects itself). While `Simulation.run()` runs, this module puts its own functions
in their place:

- `time.time`, `time.time_ns`, `time.monotonic`, `time.monotonic_ns`,
  `time.perf_counter`, `time.perf_counter_ns` read the simulation's virtual clock: the
  monotonic ones are `loop.time()` (as they are in stock asyncio, whose `loop.time()`
  is `time.monotonic()`), the wall clock is the run's fixed epoch plus `loop.time()`;
  `time.gmtime`, `time.localtime`, `time.ctime`, `time.asctime` and `time.strftime`
  called without a time read that wall clock too. One seed, one set of timestamps.
- `time.sleep()` raises NotSimulatedError, naming itself.
- `socket.socket.bind`, `listen`, `connect`, `connect_ex` and `sendto`, called from a
  host's code on a real AF_INET socket, make it a simulated socket first
  (looplet/sim/lowlevel.py, `adopt`), so that no real port is bound and no real packet
  or connection leaves; a blocking TCP connect is refused by name.

Each replacement asks which run, if any, is active on the calling thread, and acts for
the innermost one; on any other thread, or with no run active, it calls the function
it replaced. So a thread outside the simulation keeps the real clock, a simulation
run from inside another one's host (which asyncio refuses, as a loop inside a running
loop) or on another thread stacks cleanly, and a replacement left in place by someone
else's patch is harmless. What is not caught: names bound before the run
(`from time import monotonic`, a default argument, a class attribute such as
logging.Formatter.converter), `datetime.now()` and every other reading made in C
(OpenSSL's certificate dates, C extensions), `socket.getaddrinfo` and the rest of the
socket module's functions.

The invariant owned here: the replacements are installed while at least one run is
active and removed (the replaced attributes put back as they were) when the last one
ends, whether it returned or raised; the clock a thread reads only ever comes from a
run active on that very thread.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Final

from looplet.sim.errors import NotSimulatedError
from looplet.sim.host import current_process
from looplet.sim.lowlevel import adopt

#: The `time` module's clock readers that read the virtual clock during a run.
CLOCK_READERS: Final = (
    "time",
    "time_ns",
    "monotonic",
    "monotonic_ns",
    "perf_counter",
    "perf_counter_ns",
)
#: Readers of the wall clock in struct_time or text form, when given no time.
_CALENDAR: Final = ("gmtime", "localtime", "ctime", "asctime", "strftime")
#: socket.socket methods a host's code reaches the real network through.
SOCKET_METHODS: Final = ("bind", "listen", "connect", "connect_ex", "sendto")


class Run:
    """One active simulation run: its virtual clock and what its sockets belong to."""

    __slots__ = ("epoch", "epoch_ns", "loop", "loop_time")

    def __init__(self, loop: Any, epoch: float) -> None:
        self.loop = loop
        self.loop_time: Callable[[], float] = loop.time
        self.epoch = epoch
        self.epoch_ns = round(epoch * 1_000_000_000)

    def wall(self) -> float:
        return self.epoch + self.loop_time()


#: Active runs by thread, innermost last.
_runs: dict[int, list[Run]] = {}
_lock = threading.Lock()
#: What the replacements replaced: (owner, name) -> the attribute found in the owner's
#: own namespace (None: it had none and inherited the name).
_saved: dict[tuple[Any, str], Any] = {}
#: The functions replaced, to call when no run is active on the calling thread.
_real: dict[str, Any] = {}


def active() -> Run | None:
    """The innermost run active on the calling thread, if any."""
    stack = _runs.get(threading.get_ident())
    return stack[-1] if stack else None


@contextmanager
def intercepting(loop: Any, epoch: float) -> Iterator[Run]:
    """Make the calling thread's clock readings, sleeps and socket calls the run's
    (see the module's docstring) until the block ends, however it ends."""
    run = Run(loop, epoch)
    thread = threading.get_ident()
    with _lock:
        if not _runs:
            _install()
        _runs.setdefault(thread, []).append(run)
    try:
        yield run
    finally:
        with _lock:
            stack = _runs[thread]
            # Innermost last; removed by identity, should runs ever end out of order.
            for index in range(len(stack) - 1, -1, -1):
                if stack[index] is run:
                    del stack[index]
                    break
            if not stack:
                del _runs[thread]
            if not _runs:
                _uninstall()


def _install() -> None:
    for name in (*CLOCK_READERS, *_CALENDAR, "sleep"):
        _replace(time, name, name, _REPLACEMENTS[name])
    for name in SOCKET_METHODS:
        _replace(socket.socket, name, "socket." + name, _SOCKET_REPLACEMENTS[name])


def _replace(owner: Any, name: str, key: str, replacement: Any) -> None:
    current = getattr(owner, name)
    # A replacement someone's patch put back after the last run is not the real function.
    if current is not replacement:
        _real[key] = current
    _saved[(owner, name)] = owner.__dict__.get(name)
    setattr(owner, name, replacement)


def _uninstall() -> None:
    for (owner, name), original in _saved.items():
        if original is None:
            delattr(owner, name)
        else:
            setattr(owner, name, original)
    _saved.clear()


# -- the clock --------------------------------------------------------------------------


def _time() -> float:
    run = active()
    return _real["time"]() if run is None else run.wall()


def _time_ns() -> int:
    run = active()
    return _real["time_ns"]() if run is None else run.epoch_ns + round(run.loop_time() * 1_000_000_000)


def _monotonic() -> float:
    run = active()
    return _real["monotonic"]() if run is None else run.loop_time()


def _monotonic_ns() -> int:
    run = active()
    return _real["monotonic_ns"]() if run is None else round(run.loop_time() * 1_000_000_000)


def _perf_counter() -> float:
    run = active()
    return _real["perf_counter"]() if run is None else run.loop_time()


def _perf_counter_ns() -> int:
    run = active()
    return _real["perf_counter_ns"]() if run is None else round(run.loop_time() * 1_000_000_000)


def _now_if(given: tuple[Any, ...]) -> tuple[Any, ...]:
    # The calendar functions read the real clock only when given no time (or None).
    if given and given[0] is not None:
        return given
    run = active()
    return given if run is None else (run.wall(),)


def _gmtime(*secs: Any) -> time.struct_time:
    return _real["gmtime"](*_now_if(secs))  # type: ignore[no-any-return]


def _localtime(*secs: Any) -> time.struct_time:
    return _real["localtime"](*_now_if(secs))  # type: ignore[no-any-return]


def _ctime(*secs: Any) -> str:
    return _real["ctime"](*_now_if(secs))  # type: ignore[no-any-return]


def _asctime(*t: Any) -> str:
    if not t and active() is not None:
        t = (_localtime(),)
    return _real["asctime"](*t)  # type: ignore[no-any-return]


def _strftime(*args: Any) -> str:
    if len(args) == 1 and active() is not None:
        args = (args[0], _localtime())
    return _real["strftime"](*args)  # type: ignore[no-any-return]


def _sleep(seconds: float) -> None:
    if active() is None:
        _real["sleep"](seconds)
        return
    raise NotSimulatedError(
        "time.sleep() is not available in a simulation: it would stop every simulated host "
        "at once (they share one thread); use asyncio.sleep()"
    )


_REPLACEMENTS: Final[dict[str, Callable[..., Any]]] = {
    "time": _time,
    "time_ns": _time_ns,
    "monotonic": _monotonic,
    "monotonic_ns": _monotonic_ns,
    "perf_counter": _perf_counter,
    "perf_counter_ns": _perf_counter_ns,
    "gmtime": _gmtime,
    "localtime": _localtime,
    "ctime": _ctime,
    "asctime": _asctime,
    "strftime": _strftime,
    "sleep": _sleep,
}

# -- sockets a host's code binds, listens on or connects itself ---------------------------


def _in_host(sock: Any) -> bool:
    # Only real sockets on the thread of an active run, from a host's code: everything
    # else (another thread, the test's own code, a socket already simulated) is left alone.
    if active() is None or type(sock) is not socket.socket:
        return False
    return current_process.get() is not None


def _adopted(sock: socket.socket, call: str) -> Any:
    run = active()
    assert run is not None
    return adopt(sock, call, run.loop)


def _bind(self: socket.socket, address: Any) -> None:
    if not _in_host(self):
        return _real["socket.bind"](self, address)  # type: ignore[no-any-return]
    return _adopted(self, "socket.bind()").bind(address)  # type: ignore[no-any-return]


def _listen(self: socket.socket, *backlog: int) -> None:
    if not _in_host(self):
        return _real["socket.listen"](self, *backlog)  # type: ignore[no-any-return]
    return _adopted(self, "socket.listen()").listen(*backlog)  # type: ignore[no-any-return]


def _connect(self: socket.socket, address: Any) -> None:
    if not _in_host(self):
        return _real["socket.connect"](self, address)  # type: ignore[no-any-return]
    return _adopted(self, "socket.connect()").connect(address)  # type: ignore[no-any-return]


def _connect_ex(self: socket.socket, address: Any) -> int:
    if not _in_host(self):
        return _real["socket.connect_ex"](self, address)  # type: ignore[no-any-return]
    return _adopted(self, "socket.connect_ex()").connect_ex(address)  # type: ignore[no-any-return]


def _sendto(self: socket.socket, data: Any, *args: Any) -> int:
    if not _in_host(self):
        return _real["socket.sendto"](self, data, *args)  # type: ignore[no-any-return]
    return _adopted(self, "socket.sendto()").sendto(data, *args)  # type: ignore[no-any-return]


_SOCKET_REPLACEMENTS: Final[dict[str, Callable[..., Any]]] = {
    "bind": _bind,
    "listen": _listen,
    "connect": _connect,
    "connect_ex": _connect_ex,
    "sendto": _sendto,
}
