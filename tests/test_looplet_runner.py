"""looplet/runner.py: what type checkers see of `looplet.new_event_loop()`.

(Named apart from tests/compat/test_runner.py: pytest cannot collect one basename twice.)

The loop it returns is a `looplet.EventLoop`, and its annotation says so: a program
under `mypy --strict` may call looplet's own methods (`statistics()`,
`enable_timing()`, `set_clock()`) on it without a cast.
"""

from __future__ import annotations

import subprocess
import sys
import typing
from pathlib import Path

import pytest

import looplet
import looplet.runner

REPO = Path(__file__).resolve().parent.parent

SNIPPET = """\
import looplet

loop = looplet.new_event_loop()
stats: looplet.Statistics = loop.statistics()
loop.enable_timing()
loop.close()
"""


def test_new_event_loop_is_annotated_as_looplet_event_loop() -> None:
    hints = typing.get_type_hints(
        looplet.runner.new_event_loop, vars(looplet.runner) | {"EventLoop": looplet.EventLoop}
    )
    assert hints["return"] is looplet.EventLoop


def test_mypy_strict_accepts_looplet_methods_on_a_new_loop(tmp_path: Path) -> None:
    pytest.importorskip("mypy", reason="mypy is not installed")
    (tmp_path / "snippet.py").write_text(SNIPPET)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            "--cache-dir",
            str(tmp_path / "cache"),
            str(tmp_path / "snippet.py"),
        ],
        cwd=REPO,  # this checkout's looplet, whichever one is installed
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
