"""No deprecated asyncio API at import or on the normal path, on this Python and on 3.14+.

Python 3.14 deprecates asyncio's event loop policies (`DefaultEventLoopPolicy`,
`AbstractEventLoopPolicy`, `get_event_loop_policy`, `set_event_loop_policy`) and
`asyncio.iscoroutinefunction`, for removal in 3.16; asyncio itself goes on using
private spellings that do not warn. 3.14 cannot run here, so each scenario runs in a
fresh interpreter under `-W error` with asyncio made to behave as 3.14's does:

- "here": the real Python; once looplet is imported, every deprecated name warns
  when looplet (not asyncio) calls it.
- "3.14": the deprecated names warn from the start, including an access to the policy
  classes; the private spellings exist; looplet is imported believing it runs on
  3.14 (`sys.version_info` reads 3.14 during the import, so its policy gate takes
  the 3.14 branch).
- "3.16": as "3.14", with the policy API gone altogether.

The ways in that need no policy (`looplet.run`, `looplet.new_event_loop`,
`asyncio.run(..., loop_factory=...)`, `asyncio.Runner(loop_factory=...)`) and the
entry points that are looplet's own choice (`python -m looplet`) must not warn
anywhere; `looplet.install()` and `looplet.EventLoopPolicy` warn on 3.14 as asyncio's
own policy API does, attributed to the caller, and are gone on 3.16.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

import looplet
from looplet import _asyncio, policy
from looplet._asyncio import PolicyAPI

REPO = Path(__file__).resolve().parent.parent

IMPORTS = """
import asyncio, sys, warnings
from asyncio import coroutines, events, unix_events
"""

# asyncio as 3.14 has it: the public policy API and iscoroutinefunction warn unless
# asyncio itself calls them (3.14's asyncio calls the private spellings instead).
TRIPWIRES = """
def _from_asyncio(depth):
    # The caller, past the import machinery (`from . import X` goes through it).
    frame = sys._getframe(depth + 1)
    while frame.f_globals.get("__name__", "").startswith("importlib"):
        frame = frame.f_back
    return frame.f_globals.get("__name__", "").startswith("asyncio")

def _deprecated(name, func):
    def wrapper(*args, **kwargs):
        if not _from_asyncio(1):
            warnings.warn(f"{name!r} is deprecated and slated for removal in Python 3.16",
                          DeprecationWarning, stacklevel=2)
        return func(*args, **kwargs)
    return wrapper

events._get_event_loop_policy = events.get_event_loop_policy
events._set_event_loop_policy = events.set_event_loop_policy
coroutines._iscoroutinefunction = coroutines.iscoroutinefunction
for _mod in (asyncio, events):
    _mod.get_event_loop_policy = _deprecated("asyncio.get_event_loop_policy", events._get_event_loop_policy)
    _mod.set_event_loop_policy = _deprecated("asyncio.set_event_loop_policy", events._set_event_loop_policy)
for _mod in (asyncio, coroutines):
    _mod.iscoroutinefunction = _deprecated("asyncio.iscoroutinefunction", coroutines._iscoroutinefunction)
"""

# The policy classes, too, warn on access from 3.14 on; asyncio keeps private names.
CLASS_TRIPWIRES = """
unix_events._DefaultEventLoopPolicy = unix_events._UnixDefaultEventLoopPolicy
events._AbstractEventLoopPolicy = events.AbstractEventLoopPolicy
_classes = {"DefaultEventLoopPolicy": asyncio.DefaultEventLoopPolicy,
            "AbstractEventLoopPolicy": asyncio.AbstractEventLoopPolicy}
for _name in _classes:
    delattr(asyncio, _name)

def __getattr__(name):
    if name in _classes:
        if not _from_asyncio(1):
            warnings.warn(f"'asyncio.{name}' is deprecated and slated for removal in Python 3.16",
                          DeprecationWarning, stacklevel=2)
        return _classes[name]
    raise AttributeError(f"module 'asyncio' has no attribute {name!r}")

asyncio.__getattr__ = __getattr__
"""

# 3.16: no policies at all (what is left of them is not looplet's business).
REMOVED = """
for _name in ("_get_event_loop_policy", "_set_event_loop_policy"):
    delattr(events, _name)
del unix_events._DefaultEventLoopPolicy
asyncio.get_event_loop_policy = asyncio.set_event_loop_policy = None
"""


def _before_314(code: str) -> str:
    # A Python that has 3.14's deprecations needs no simulation of them.
    return "if sys.version_info < (3, 14):\n" + textwrap.indent(code, "    ") + "\n"


def _import_as(version: tuple[int, int]) -> str:
    return textwrap.dedent(
        f"""
        _real_version = sys.version_info
        sys.version_info = {(*version, 0, "final", 0)!r}
        try:
            import looplet
        finally:
            sys.version_info = _real_version
        """
    )


PRELUDES = {
    "here": IMPORTS + "import looplet\n" + _before_314(TRIPWIRES),
    "3.14": IMPORTS + _before_314(TRIPWIRES + CLASS_TRIPWIRES) + _import_as((3, 14)),
    "3.16": IMPORTS + _before_314(TRIPWIRES + CLASS_TRIPWIRES) + REMOVED + _import_as((3, 16)),
}

MAIN = """
async def main():
    loop = asyncio.get_running_loop()
    await asyncio.sleep(0)
    return type(loop).__name__
"""

SCENARIOS = {
    "import": "assert 'EventLoopPolicy' not in vars(looplet)",
    "looplet.run": "assert looplet.run(main()) == 'EventLoop'",
    "looplet.run-debug": "assert looplet.run(main(), debug=True) == 'EventLoop'",
    "new_event_loop": "loop = looplet.new_event_loop(); loop.close()",
    "asyncio.Runner": textwrap.dedent(
        """
        with asyncio.Runner(loop_factory=looplet.new_event_loop) as runner:
            assert runner.run(main()) == 'EventLoop'
        """
    ),
    "star-import": "exec('from looplet import *', {})",
    # Debug mode checks callbacks for coroutine functions, as asyncio's loops do.
    "callback-checks": textwrap.dedent(
        """
        async def check():
            loop = asyncio.get_running_loop()
            for call in (lambda: loop.call_soon(main), lambda: loop.add_signal_handler(10, main)):
                try:
                    call()
                except TypeError as exc:
                    assert 'coroutines cannot be used' in str(exc), exc
                else:
                    raise AssertionError('no TypeError')
        looplet.run(check(), debug=True)
        """
    ),
}
if sys.version_info >= (3, 12):
    SCENARIOS["asyncio.run"] = "assert asyncio.run(main(), loop_factory=looplet.new_event_loop) == 'EventLoop'"


def run_python(code: str, *args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-W", "error", "-c", code, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("python", PRELUDES)
def test_the_ways_in_do_not_warn(python: str, scenario: str) -> None:
    proc = run_python(PRELUDES[python] + MAIN + SCENARIOS[scenario])
    assert (proc.returncode, proc.stderr) == (0, "")


def test_the_tripwires_trip() -> None:
    # The simulation is worth something only if a deprecated call does fail.
    for use in ("asyncio.get_event_loop_policy()", "asyncio.DefaultEventLoopPolicy", "asyncio.iscoroutinefunction(1)"):
        proc = run_python(PRELUDES["3.14"] + use)
        assert proc.returncode == 1
        assert "DeprecationWarning: " in proc.stderr
        assert "is deprecated and slated for removal in Python 3.16" in proc.stderr


@pytest.mark.parametrize("python", ["here", "3.14"])
def test_python_m_looplet_does_not_warn(python: str, tmp_path: Path) -> None:
    script = tmp_path / "script.py"
    script.write_text(
        "import asyncio\n"
        "async def main():\n"
        "    return type(asyncio.get_running_loop()).__module__\n"
        "print(asyncio.run(main()))\n"
    )
    code = PRELUDES[python] + f"import sys, runpy\nsys.argv = ['looplet', {str(script)!r}]\n"
    code += "runpy.run_module('looplet', run_name='__main__', alter_sys=True)\n"
    proc = run_python(code)
    assert (proc.returncode, proc.stderr, proc.stdout) == (0, "", "looplet.loop\n")


RECORD = """
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    {call}
for w in caught:
    print(w.category.__name__, w.filename, w.lineno, str(w.message), sep="|")
"""


@pytest.mark.parametrize(
    ("call", "named"),
    [("looplet.install()", "looplet.install()"), ("looplet.EventLoopPolicy", "looplet.EventLoopPolicy")],
)
def test_the_policy_api_warns_on_314_as_asyncio_does(call: str, named: str) -> None:
    prelude = PRELUDES["3.14"]
    line = prelude.count("\n") + MAIN.count("\n") + RECORD.count("\n", 0, RECORD.index("{call}")) + 1
    proc = run_python(prelude + MAIN + RECORD.format(call=call))
    assert proc.returncode == 0, proc.stderr
    [warning] = proc.stdout.splitlines()
    category, filename, lineno, message = warning.split("|")
    # Attributed to the caller, as asyncio's own warnings are.
    assert (category, filename, int(lineno)) == ("DeprecationWarning", "<string>", line)
    assert message.startswith(named)
    assert "slated for removal in Python 3.16" in message
    assert "loop_factory=looplet.new_event_loop" in message
    assert "looplet.run(main())" in message


def test_install_on_314_makes_looplet_the_loop_of_asyncio_run() -> None:
    code = PRELUDES["3.14"] + MAIN + "warnings.simplefilter('ignore', DeprecationWarning)\nlooplet.install()\n"
    code += "warnings.simplefilter('error')\nassert asyncio.run(main()) == 'EventLoop'\n"
    code += "assert type(events._get_event_loop_policy()).__qualname__ == 'EventLoopPolicy'\n"
    proc = run_python(code)
    assert (proc.returncode, proc.stderr) == (0, "")


@pytest.mark.parametrize(
    ("call", "error"),
    [
        ("looplet.EventLoopPolicy", "AttributeError: looplet.EventLoopPolicy needs asyncio's event loop policies"),
        ("looplet.install()", "RuntimeError: installing looplet as asyncio's event loop needs asyncio's event loop"),
        ("from looplet import EventLoopPolicy", "ImportError: cannot import name 'EventLoopPolicy'"),
    ],
)
def test_the_policy_api_is_gone_on_316(call: str, error: str) -> None:
    proc = run_python(PRELUDES["3.16"] + call)
    assert proc.returncode == 1
    assert error in proc.stderr.strip().splitlines()[-1]


def test_python_m_looplet_on_316_says_why_it_cannot(tmp_path: Path) -> None:
    script = tmp_path / "script.py"
    script.write_text("print('ran')\n")
    code = PRELUDES["3.16"] + f"import sys, runpy\nsys.argv = ['looplet', {str(script)!r}]\n"
    code += "runpy.run_module('looplet', run_name='__main__', alter_sys=True)\n"
    proc = run_python(code)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.startswith("python -m looplet: installing looplet as asyncio's event loop needs asyncio's")
    assert "loop_factory=looplet.new_event_loop" in proc.stderr


# -- in this process: the gate, monkeypatched ------------------------------------------------


@pytest.fixture
def deprecated_policies(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """looplet's policy glue as on 3.14 (the policy API itself stays this Python's)."""
    monkeypatch.setattr(_asyncio, "POLICY_API", PolicyAPI.DEPRECATED)
    yield
    policy.restore(None)


current_policies = pytest.mark.skipif(
    _asyncio.POLICY_API is not PolicyAPI.CURRENT,
    reason="asyncio's policies are current only before 3.14 (deprecated from 3.14, gone in 3.16)",
)


@current_policies
def test_policy_class_is_made_once_and_named_as_before() -> None:
    cls = policy.policy_class()
    assert cls is policy.policy_class() is looplet.EventLoopPolicy is policy.EventLoopPolicy
    assert (cls.__module__, cls.__qualname__, cls.__name__) == ("looplet.policy", "EventLoopPolicy", "EventLoopPolicy")
    assert issubclass(cls, asyncio.DefaultEventLoopPolicy)
    assert cls.__doc__
    loop = cls().new_event_loop()
    try:
        assert type(loop) is looplet.EventLoop
    finally:
        loop.close()


@current_policies
def test_on_this_python_the_policy_api_does_not_warn() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert looplet.EventLoopPolicy is policy.policy_class()
        assert "EventLoopPolicy" in looplet.__all__
        assert set(looplet.__all__) <= set(dir(looplet))


def test_event_loop_policy_warns_where_deprecated(deprecated_policies: None) -> None:
    with pytest.warns(DeprecationWarning, match=r"^looplet\.EventLoopPolicy is deprecated") as caught:
        cls = looplet.EventLoopPolicy
    assert cls is policy.policy_class()
    assert [w.filename for w in caught] == [__file__]
    with pytest.warns(DeprecationWarning, match=r"^looplet\.EventLoopPolicy is deprecated") as caught:
        from looplet.policy import EventLoopPolicy  # noqa: F401
    assert [w.filename for w in caught] == [__file__]


def test_install_warns_where_deprecated(deprecated_policies: None) -> None:
    with pytest.warns(DeprecationWarning, match=r"^looplet\.install\(\) sets asyncio's event loop policy") as caught:
        previous = looplet.install()
    assert [w.filename for w in caught] == [__file__]
    assert previous is not None
    assert _asyncio.get_event_loop_policy is not None
    assert isinstance(_asyncio.get_event_loop_policy(), policy.policy_class())


def test_looplets_own_entry_points_do_not_warn_where_deprecated(deprecated_policies: None) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        previous = policy.use_looplet_policy()
        policy.restore(previous)
