"""looplet/_asyncio.py: the one module that binds asyncio's private names, and its checks.

Covers the invariant that no other module of looplet imports a private asyncio name
(read from the source), that each shape check refuses a changed shape with a message
naming the Python version and what changed (fed stand-ins, and end to end: an
`import looplet` in a subprocess after asyncio was altered), and that the bindings
behave as asyncio's own on this Python (`iscoroutinefunction`, the policy gate).
"""

from __future__ import annotations

import ast
import asyncio
import functools
import subprocess
import sys
import textwrap
from pathlib import Path
from unittest import mock

import pytest

import looplet
from looplet import _asyncio
from looplet._asyncio import PolicyAPI, UnsupportedPython

PACKAGE = Path(_asyncio.__file__).resolve().parent
# asyncio's public names (its __all__ lists _get_running_loop and _set_running_loop too);
# the policy classes left __all__ when 3.14 deprecated them.
PUBLIC = {name for name in asyncio.__all__ if not name.startswith("_")} | {
    "AbstractEventLoopPolicy",
    "DefaultEventLoopPolicy",
}
VERSION = _asyncio.PYTHON_VERSION


def _looplet_modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if p.name != "_asyncio.py" or p.parent != PACKAGE)


#: Submodules a compiled module imports by name, and uses only through asyncio's public
#: names: mypyc looks a base class up in the module that defines it (asyncio.Transport
#: in asyncio.transports), and that module must be imported where the class is made.
SUBMODULES_FOR_MYPYC = {"asyncio.transports"}


def _private_asyncio_uses(path: Path) -> list[str]:
    """Each import or attribute chain in `path` that reaches past asyncio's public names."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "asyncio":
            if node.module != "asyncio":
                found.append(f"line {node.lineno}: from {node.module} import ...")
            else:
                found.extend(
                    f"line {node.lineno}: from asyncio import {alias.name}"
                    for alias in node.names
                    if alias.name not in PUBLIC
                )
        elif isinstance(node, ast.Import):
            found.extend(
                f"line {node.lineno}: import {alias.name}"
                for alias in node.names
                if alias.name.startswith("asyncio.") and alias.name not in SUBMODULES_FOR_MYPYC
            )
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "asyncio"
            and node.attr not in PUBLIC
        ):
            found.append(f"line {node.lineno}: asyncio.{node.attr}")
    return sorted(found, key=lambda use: int(use.split()[1].rstrip(":")))


@pytest.mark.parametrize("path", _looplet_modules(), ids=lambda p: str(p.relative_to(PACKAGE.parent)))
def test_only_the_binding_module_reaches_into_asyncio(path: Path) -> None:
    assert _private_asyncio_uses(path) == []


def test_the_scan_sees_private_uses(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        textwrap.dedent(
            """
            import asyncio
            import asyncio.sslproto
            from asyncio import Handle, base_events
            from asyncio.events import _get_running_loop
            asyncio.events._get_running_loop()
            asyncio._get_running_loop()
            asyncio.Future()
            """
        )
    )
    assert _private_asyncio_uses(sample) == [
        "line 3: import asyncio.sslproto",
        "line 4: from asyncio import base_events",
        "line 5: from asyncio.events import ...",
        "line 6: asyncio.events",
        "line 7: asyncio._get_running_loop",
    ]


def test_looplet_imports_the_binding_module_first() -> None:
    init = ast.parse((PACKAGE / "__init__.py").read_text(encoding="utf-8"))
    first = next(
        node for node in init.body if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("looplet")
    )
    assert first.module == "looplet._asyncio"


# -- the checks, fed stand-ins ----------------------------------------------------------------


def _refused(excinfo: pytest.ExceptionInfo[UnsupportedPython]) -> str:
    message = str(excinfo.value)
    assert message.startswith(f"looplet does not support Python {VERSION}: ")
    assert isinstance(excinfo.value, ImportError)
    return message


def test_the_real_handles_have_the_slots_looplet_fills() -> None:
    assert _asyncio.slots_of(asyncio.Handle) == set(_asyncio.HANDLE_SLOTS)
    assert _asyncio.slots_of(asyncio.TimerHandle) == set(_asyncio.HANDLE_SLOTS) | set(_asyncio.TIMER_HANDLE_SLOTS)


def test_a_missing_slot_is_refused() -> None:
    class Handle:
        __slots__ = ("_args", "_callback", "_cancelled", "_context", "_loop", "_repr")

    with pytest.raises(UnsupportedPython) as excinfo:
        _asyncio.check_slots(Handle, _asyncio.HANDLE_SLOTS)
    assert "Handle has no slot '_source_traceback'" in _refused(excinfo)


def test_a_new_slot_is_refused() -> None:
    class TimerHandle(asyncio.Handle):
        __slots__ = ("_lock", "_scheduled", "_when")

    with pytest.raises(UnsupportedPython) as excinfo:
        _asyncio.check_slots(TimerHandle, _asyncio.TIMER_HANDLE_SLOTS, base=asyncio.Handle)
    assert "TimerHandle has a new slot '_lock'" in _refused(excinfo)


def test_a_missing_name_is_refused() -> None:
    with pytest.raises(UnsupportedPython) as excinfo:
        _asyncio.require(asyncio.base_events, "_no_such_helper")
    assert _refused(excinfo).endswith("asyncio.base_events has no attribute '_no_such_helper'")


def test_signature_checks() -> None:
    def ssl_protocol(loop, app_protocol, sslcontext, waiter, server_side=False, *, call_connection_made=True):  # type: ignore[no-untyped-def]
        pass

    four = ("loop", "app_protocol", "sslcontext", "waiter")
    ok = _asyncio.check_signature(ssl_protocol, "f", four, ("server_side", "call_connection_made"))
    assert next(iter(ok.parameters)) == "loop"
    with pytest.raises(UnsupportedPython) as excinfo:
        _asyncio.check_signature(ssl_protocol, "f", ("loop", "protocol"))
    assert "f(loop, app_protocol, " in _refused(excinfo)
    assert "no longer takes (loop, protocol) first" in str(excinfo.value)
    with pytest.raises(UnsupportedPython) as excinfo:
        _asyncio.check_signature(ssl_protocol, "f", four, ("timeout",))
    assert "has no keyword argument 'timeout'" in _refused(excinfo)
    with pytest.raises(UnsupportedPython) as excinfo:
        _asyncio.check_signature(ssl_protocol, "f", ("loop", "app_protocol"))
    assert "needs an argument 'sslcontext'" in _refused(excinfo)

    def takes_kwargs(loop, **kwargs):  # type: ignore[no-untyped-def]
        pass

    _asyncio.check_signature(takes_kwargs, "g", ("loop",), ("anything",))


def test_refers_to() -> None:
    def cancel(self):  # type: ignore[no-untyped-def]
        self._loop._timer_handle_cancelled(self)

    _asyncio.check_refers_to(cancel, "cancel", "_timer_handle_cancelled", "why")
    with pytest.raises(UnsupportedPython) as excinfo:
        _asyncio.check_refers_to(cancel, "cancel", "_other_hook", "the hook looplet provides")
    assert _refused(excinfo).endswith("cancel no longer uses '_other_hook', the hook looplet provides")


def test_methods() -> None:
    with pytest.raises(UnsupportedPython) as excinfo:
        _asyncio.check_methods(asyncio.Handle, "_run", "_no_such_method")
    assert "asyncio.events.Handle has no method '_no_such_method'" in _refused(excinfo)


def test_server_attach_shapes() -> None:
    class Counting:
        def _attach(self) -> None: ...
        def _detach(self) -> None: ...

    class Tracking:
        def _attach(self, transport: object) -> None: ...
        def _detach(self, transport: object) -> None: ...

    class Other:
        def _attach(self, transport: object, why: str) -> None: ...
        def _detach(self, transport: object) -> None: ...

    assert _asyncio._server_tracks_transports(Counting._attach, Counting._detach) is False
    assert _asyncio._server_tracks_transports(Tracking._attach, Tracking._detach) is True
    with pytest.raises(UnsupportedPython) as excinfo:
        _asyncio._server_tracks_transports(Other._attach, Other._detach)
    assert "take neither nothing nor a transport" in _refused(excinfo)
    assert _asyncio.SERVER_TRACKS_TRANSPORTS is (sys.version_info >= (3, 13))


# -- end to end: asyncio altered before `import looplet` ----------------------------------------

ALTERATIONS = {
    "a helper gone": (
        "import asyncio.base_events as m; del m._ipaddr_info",
        "asyncio.base_events has no attribute '_ipaddr_info'",
    ),
    "a signature changed": (
        "import asyncio.staggered as m; m.staggered_race = lambda coro_fns, delay, timeout: None",
        "asyncio.staggered.staggered_race(coro_fns, delay, timeout) has no keyword argument 'loop'",
    ),
    "a constructor changed": (
        "import asyncio.sslproto as m\n"
        "class SSLProtocol(m.SSLProtocol):\n"
        "    def __init__(self, loop, app_protocol, sslcontext, waiter, server_hostname=None): pass\n"
        "m.SSLProtocol = SSLProtocol",
        "asyncio.sslproto.SSLProtocol(loop, app_protocol, sslcontext, waiter, server_hostname=None) "
        "no longer takes (loop, app_protocol, sslcontext, waiter, server_side, server_hostname) first",
    ),
    "a server method changed": (
        "import asyncio\nasyncio.Server._attach = lambda self, transport, why: None",
        "take neither nothing nor a transport",
    ),
    "a loop method run on looplet's loop changed": (
        "import asyncio\n"
        "async def subprocess_exec(self, protocol_factory, program, *args, **kwargs):\n"
        "    return await self._spawn(program, *args)\n"
        "asyncio.BaseEventLoop.subprocess_exec = subprocess_exec",
        "asyncio.BaseEventLoop.subprocess_exec no longer uses '_make_subprocess_transport'",
    ),
    "a constant gone": (
        "import asyncio.constants as m; del m.ACCEPT_RETRY_DELAY",
        "asyncio.constants has no attribute 'ACCEPT_RETRY_DELAY'",
    ),
}


@pytest.mark.parametrize("change", ALTERATIONS, ids=list(ALTERATIONS))
def test_import_refuses_an_altered_asyncio(change: str) -> None:
    alteration, expected = ALTERATIONS[change]
    code = alteration + "\nimport looplet\n"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"looplet._asyncio.UnsupportedPython: looplet does not support Python {VERSION}: ")
    assert expected in last


# -- the bindings behave as asyncio's own ----------------------------------------------------


async def _coroutine_function() -> None:
    pass


def _marked() -> None:
    pass


_marked._is_coroutine = asyncio.coroutines._is_coroutine  # type: ignore[attr-defined]


class _AsyncCallable:
    async def __call__(self) -> None:
        pass


@pytest.mark.parametrize(
    "obj",
    [
        _coroutine_function,
        _marked,
        mock.AsyncMock(),
        mock.Mock(),
        mock.create_autospec(_coroutine_function),
        functools.partial(_coroutine_function),
        _AsyncCallable(),
        print,
        lambda: None,
        None,
    ],
    ids=[
        "async-def",
        "marked",
        "AsyncMock",
        "Mock",
        "autospec",
        "partial",
        "async-call",
        "builtin",
        "lambda",
        "None",
    ],
)
def test_iscoroutinefunction_is_asyncios(obj: object) -> None:
    # asyncio's own test, as its loops call it on this Python.
    own = getattr(asyncio.coroutines, "_iscoroutinefunction", None) or asyncio.coroutines.iscoroutinefunction
    assert _asyncio.iscoroutinefunction(obj) is own(obj)


@pytest.mark.parametrize(
    ("version", "api"),
    [
        ((3, 11), PolicyAPI.CURRENT),
        ((3, 13), PolicyAPI.CURRENT),
        ((3, 14), PolicyAPI.DEPRECATED),
        ((3, 15), PolicyAPI.DEPRECATED),
        ((3, 16), PolicyAPI.REMOVED),
        ((4, 0), PolicyAPI.REMOVED),
    ],
)
def test_policy_gate(version: tuple[int, int], api: PolicyAPI) -> None:
    assert _asyncio.policy_api(version) is api


def test_policy_bindings_on_this_python() -> None:
    assert _asyncio.POLICY_API is _asyncio.policy_api(sys.version_info[:2])
    if _asyncio.POLICY_API is PolicyAPI.CURRENT:
        assert _asyncio.DefaultEventLoopPolicy is asyncio.DefaultEventLoopPolicy
        assert _asyncio.get_event_loop_policy is asyncio.get_event_loop_policy
        assert _asyncio.set_event_loop_policy is asyncio.set_event_loop_policy


@pytest.mark.skipif(
    sys.version_info >= (3, 14),
    reason="from 3.14 asyncio's C tasks check the running loop the C functions set, so swapping in the "
    "pure-Python ones breaks asyncio's own loops too",
)
def test_the_running_loop_and_debug_mode_are_read_through_asyncio(monkeypatch: pytest.MonkeyPatch) -> None:
    # As asyncio's own loops do: code that swaps these functions (CPython's tests run
    # the pure-Python running-loop functions) reaches looplet's loops too.
    py_get = asyncio.events._py__get_running_loop  # type: ignore[attr-defined]
    monkeypatch.setattr(asyncio.events, "_get_running_loop", py_get)
    monkeypatch.setattr(asyncio.events, "_set_running_loop", asyncio.events._py__set_running_loop)  # type: ignore[attr-defined]
    monkeypatch.setattr(asyncio.coroutines, "_is_debug_mode", lambda: True)

    async def main() -> object:
        return py_get()

    loop = looplet.new_event_loop()
    try:
        assert loop.get_debug()
        assert loop.run_until_complete(main()) is loop
        assert py_get() is None
    finally:
        loop.close()
