"""looplet/__main__.py: the command line runs a program on looplet.

Covers `python -m looplet script.py args...` (and the same script without looplet on
asyncio), `python -m looplet -m module args...`, the script's exit status, and the usage
(no arguments, --help).
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


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


def run_python(*args, cwd=REPO):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_python_m_looplet_script(tmp_path):
    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    proc = run_python("-m", "looplet", str(script), "arg1", "two words")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "looplet.loop.EventLoop",
        str([str(script), "arg1", "two words"]),
        "__main__",
    ]


def test_same_script_without_looplet_runs_on_asyncio(tmp_path):
    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    proc = run_python(str(script), "arg1")
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
    proc = run_python("-m", "looplet", str(script))
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
