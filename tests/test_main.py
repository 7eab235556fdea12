"""`python -m looplet` (looplet/__main__.py): what a program run under it gets.

`python -m looplet script.py args...` (and the same script without looplet, on
asyncio), `-m module args...`, `-c code`, the exit status, the usage (no arguments,
--help), and errors reported as python reports them. Each test runs a small program
in a subprocess, under `python -m looplet` and, where it says so, under plain
`python` for comparison. The rule checked here: every loop an asyncio runner makes
is a looplet loop, even when the program passes its own `loop_factory` (uvicorn,
hypercorn's uvloop worker, `uvloop.run()` do); a factory that makes a looplet loop
is kept as it is; and a replaced factory is reported once, on stderr.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def run_python(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run(
        [sys.executable, "-W", "error", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def program(tmp_path: Path, code: str) -> str:
    path = tmp_path / "prog.py"
    path.write_text(textwrap.dedent(code))
    return str(path)


FOREIGN_FACTORIES = """
    import asyncio, sys

    async def main():
        loop = type(asyncio.get_running_loop())
        return f"{loop.__module__}.{loop.__qualname__}"

    with asyncio.Runner(loop_factory=asyncio.SelectorEventLoop) as runner:
        print(runner.run(main()))
    with asyncio.Runner(loop_factory=asyncio.new_event_loop) as runner:
        print(runner.run(main()))
    if sys.version_info >= (3, 12):
        print(asyncio.run(main(), loop_factory=asyncio.SelectorEventLoop))
    else:  # asyncio.run has no loop_factory before 3.12
        with asyncio.Runner(loop_factory=asyncio.SelectorEventLoop) as runner:
            print(runner.run(main()))
"""


def test_a_foreign_loop_factory_runs_on_looplet_and_says_so_once(tmp_path: Path) -> None:
    proc = run_python("-m", "looplet", program(tmp_path, FOREIGN_FACTORIES), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["looplet.loop.EventLoop"] * 3
    assert proc.stderr.splitlines() == [
        "python -m looplet: the program's loop_factory (asyncio.unix_events._UnixSelectorEventLoop) made a "
        "asyncio.unix_events._UnixSelectorEventLoop; it runs on looplet.EventLoop instead "
        "(without -m looplet it keeps its own loop)"
    ]


def test_without_looplet_the_program_keeps_its_own_loop(tmp_path: Path) -> None:
    proc = run_python(program(tmp_path, FOREIGN_FACTORIES), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["asyncio.unix_events._UnixSelectorEventLoop"] * 3
    assert proc.stderr == ""


def test_a_factory_making_a_looplet_loop_is_kept_silently(tmp_path: Path) -> None:
    code = """
        import asyncio, looplet, looplet.testing

        async def main():
            loop = asyncio.get_running_loop()
            await asyncio.sleep(3600)
            return f"{type(loop).__name__} {type(loop.get_clock()).__name__} {loop.time()}"

        def virtual():
            return looplet.EventLoop(clock=looplet.testing.VirtualClock())

        with asyncio.Runner(loop_factory=virtual) as runner:
            print(runner.run(main()))
        with asyncio.Runner(loop_factory=looplet.new_event_loop) as runner:
            print(type(runner.get_loop()).__name__)
    """
    proc = run_python("-m", "looplet", program(tmp_path, code), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["EventLoop VirtualClock 3600.0", "EventLoop"]
    assert proc.stderr == ""


def test_a_runner_without_a_factory_runs_on_looplet_through_the_policy(tmp_path: Path) -> None:
    code = """
        import asyncio

        async def main():
            return type(asyncio.get_running_loop()).__name__

        print(asyncio.run(main()))
        loop = asyncio.new_event_loop()
        print(type(loop).__name__)
        loop.close()
    """
    proc = run_python("-m", "looplet", program(tmp_path, code), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["EventLoop", "EventLoop"]
    assert proc.stderr == ""


def test_uvloop_run_refuses_looplet_and_stderr_says_why(tmp_path: Path) -> None:
    # uvloop.run() checks that its loop is uvloop's and raises otherwise: a program that
    # calls it cannot run on looplet, and must not run on uvloop under -m looplet.
    pytest.importorskip("uvloop", reason="uvloop is not installed")
    code = """
        import asyncio, uvloop

        async def main():
            return type(asyncio.get_running_loop()).__name__

        print(uvloop.run(main()))
    """
    proc = run_python("-W", "ignore::RuntimeWarning", "-m", "looplet", program(tmp_path, code), cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert "made a uvloop.Loop; it runs on looplet.EventLoop instead" in proc.stderr
    assert "TypeError: uvloop.run() uses a non-uvloop event loop" in proc.stderr


# -- the command line, as `python` has it ------------------------------------------------


def test_a_missing_script_is_reported_as_python_reports_it(tmp_path: Path) -> None:
    plain = run_python("missing.py", cwd=tmp_path)
    under = run_python("-m", "looplet", "missing.py", cwd=tmp_path)
    assert (under.returncode, under.stdout, under.stderr) == (plain.returncode, plain.stdout, plain.stderr)
    assert under.returncode == 2
    assert under.stderr == (
        f"{sys.executable}: can't open file '{tmp_path / 'missing.py'}': [Errno 2] No such file or directory\n"
    )


def test_a_missing_module_is_reported_as_python_reports_it(tmp_path: Path) -> None:
    plain = run_python("-m", "no_such_module_here", cwd=tmp_path)
    under = run_python("-m", "looplet", "-m", "no_such_module_here", cwd=tmp_path)
    assert (under.returncode, under.stderr) == (plain.returncode, plain.stderr)
    assert under.stderr == f"{sys.executable}: No module named no_such_module_here\n"


def test_dash_c_runs_code_as_python_does(tmp_path: Path) -> None:
    code = (
        "import asyncio, sys\n"
        "async def main(): return type(asyncio.get_running_loop()).__name__\n"
        "print(sys.argv, repr(sys.path[0]), __name__, asyncio.run(main()))\n"
    )
    plain = run_python("-c", code, "a", "b", cwd=tmp_path)
    under = run_python("-m", "looplet", "-c", code, "a", "b", cwd=tmp_path)
    assert plain.stdout == "['-c', 'a', 'b'] '' __main__ _UnixSelectorEventLoop\n"
    assert under.stdout == "['-c', 'a', 'b'] '' __main__ EventLoop\n"
    assert under.returncode == 0 and under.stderr == ""


def test_dash_c_exit_status_and_errors(tmp_path: Path) -> None:
    assert run_python("-m", "looplet", "-c", "raise SystemExit(3)", cwd=tmp_path).returncode == 3
    failed = run_python("-m", "looplet", "-c", "1/0", cwd=tmp_path)
    assert failed.returncode == 1
    assert failed.stderr.splitlines()[-1] == "ZeroDivisionError: division by zero"


def test_version_prints_looplets_version(tmp_path: Path) -> None:
    import looplet

    proc = run_python("-m", "looplet", "--version", cwd=tmp_path)
    assert proc.returncode == 0
    assert proc.stdout == f"looplet {looplet.__version__} (Python {sys.version.split()[0]})\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-x"], "python -m looplet: unknown option -x"),
        (["-m"], "python -m looplet: -m needs an argument"),
        (["-c"], "python -m looplet: -c needs an argument"),
        ([], "usage: python -m looplet script.py"),
    ],
)
def test_usage_errors_exit_2(args: list[str], message: str, tmp_path: Path) -> None:
    proc = run_python("-m", "looplet", *args, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.startswith(message)
    assert "Traceback" not in proc.stderr


SCRIPT = textwrap.dedent(
    """
    import asyncio
    import sys

    async def main():
        loop = asyncio.get_running_loop()
        print(f"{type(loop).__module__}.{type(loop).__qualname__}")
        print(sys.argv)
        print(__name__)

    asyncio.run(main())
    """
)


def test_python_m_looplet_script(tmp_path):
    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    proc = run_python("-m", "looplet", str(script), "arg1", "two words", cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "looplet.loop.EventLoop",
        str([str(script), "arg1", "two words"]),
        "__main__",
    ]


def test_same_script_without_looplet_runs_on_asyncio(tmp_path):
    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    proc = run_python(str(script), "arg1", cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("asyncio.")
    assert lines[1:] == [str([str(script), "arg1"]), "__main__"]


def test_python_m_looplet_module(tmp_path):
    (tmp_path / "mymod.py").write_text(SCRIPT)
    proc = run_python("-m", "looplet", "-m", "mymod", "x", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "looplet.loop.EventLoop"
    argv = ast.literal_eval(lines[1])
    assert argv[1:] == ["x"]
    assert argv[0].endswith("mymod.py")
    assert lines[2] == "__main__"


def test_python_m_looplet_script_exit_status(tmp_path):
    script = tmp_path / "fails.py"
    script.write_text("import asyncio\nasync def main():\n    raise SystemExit(3)\nasyncio.run(main())\n")
    proc = run_python("-m", "looplet", str(script), cwd=REPO)
    assert proc.returncode == 3


def test_python_m_looplet_without_arguments_prints_usage(tmp_path):
    proc = run_python("-m", "looplet", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.startswith("usage: python -m looplet")


def test_python_m_looplet_help(tmp_path):
    proc = run_python("-m", "looplet", "--help", cwd=tmp_path)
    assert proc.returncode == 0
    assert proc.stdout.startswith("usage: python -m looplet")
