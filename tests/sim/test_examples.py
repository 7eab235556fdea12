"""The examples of examples/sim/: each prints the same bytes twice with one seed, and shows what it says.

echo_partition.py: the partitioned client's request times out during the partition
and is answered late after the repair; the others answer in time. election.py: the
sweep finds a seed where the buggy node lets two leaders win one term, the replay
of that seed shows both, and the correct node is safe with every seed.
aiohttp_lossy.py: aiohttp's client and server, unchanged, across a lossy link; a
request that outlives its timeout is retried and answered.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "sim"


def run_example(name: str, *args: str) -> str:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    proc = subprocess.run(
        [sys.executable, "-W", "error", str(EXAMPLES / name), *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    return proc.stdout


def test_echo_partition_is_the_same_twice_and_heals() -> None:
    first = run_example("echo_partition.py", "3")
    assert run_example("echo_partition.py", "3") == first
    assert run_example("echo_partition.py", "4") != first
    lines = first.splitlines()
    assert "  2.000  chaos   partition c2 <-> server" in lines
    assert "  8.000  chaos   repair c2 <-> server" in lines
    assert any("c2      request 2: no answer within 3 s" in line for line in lines)
    assert any("c2      request 2: late answer 'request 2'" in line for line in lines)
    assert lines[-1] == "answered in time: 10 9 10 (of 10 each)"


def test_election_sweep_finds_the_bug_and_the_fix_holds() -> None:
    first = run_example("election.py")
    assert run_example("election.py") == first
    lines = first.splitlines()
    header = lines[0]
    assert header.startswith("buggy node: seed ") and "has two leaders" in header
    seed = int(header.split()[3])
    assert lines[1] == f"replaying seed {seed}:"
    assert sum("LEADER" in line for line in lines) >= 2
    failing = next(line for line in lines if "seeds break safety" in line)
    count = int(failing.split()[2])
    assert 0 < count < 50
    assert lines[-1] == "correct node: safe with all 100 seeds"
    replay = run_example("election.py", "replay", str(seed)).splitlines()
    assert replay[:-1] == [line for line in lines[2 : 2 + len(replay) - 1]]
    assert replay[-1].startswith("leaders: ")


def python_blocks(text: str) -> list[str]:
    import re

    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def run_code(code: str, tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run(
        [sys.executable, "-W", "error", "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""


def test_the_examples_of_docs_sim_md_run(tmp_path: Path) -> None:
    blocks = python_blocks((REPO / "docs" / "sim.md").read_text())
    assert len(blocks) == 2  # streams; the low-level socket API
    for block in blocks:
        run_code(block, tmp_path)


def test_the_example_of_the_package_docstring_runs(tmp_path: Path) -> None:
    import textwrap

    import looplet.sim

    doc = looplet.sim.__doc__
    assert doc is not None
    start = doc.index("    import asyncio")
    end = doc.index("\nThe invariant")
    run_code(textwrap.dedent(doc[start:end]), tmp_path)


def test_aiohttp_across_a_lossy_link_is_the_same_twice_and_retries() -> None:
    pytest.importorskip("aiohttp", reason="aiohttp is not installed")
    first = run_example("aiohttp_lossy.py", "1")
    assert run_example("aiohttp_lossy.py", "1") == first
    assert run_example("aiohttp_lossy.py", "3") != first
    lines = first.splitlines()
    # c2's link loses packets: one request outlived its timeout and the retry answered.
    # (The times differ between Python versions, whose asyncio and aiohttp schedule
    # different callbacks; within one, they are the seed's.)
    [late] = [line.split()[3] for line in lines if line.endswith("no answer within 0.5 s")]
    assert any(f"PUT {late} 204 '' (attempt 2)" in line for line in lines)
    assert all(line.split()[1] == "c2" for line in lines if "attempt 2" in line)
    assert lines[-1] == "values read back: c1 4 of 4, c2 4 of 4"
