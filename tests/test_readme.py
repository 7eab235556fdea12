"""The README's examples of looplet's tools run, and print what the README says.

Role: keep the front door's claims true. Every ```python block of the sections
"Seeing and steering the loop" and "Simulated networks" runs as a program in a fresh directory and must exit
0; where the README writes the output down (comment lines after the code, or a
"prints" comment), the program must print exactly that.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SECTIONS = ("## Seeing and steering the loop", "## Simulated networks: looplet.sim")


def section_blocks() -> list[str]:
    text = (REPO / "README.md").read_text()
    blocks = []
    for section in SECTIONS:
        start = text.index(section)
        end = text.index("\n## ", start + len(section))
        blocks += re.findall(r"```python\n(.*?)```", text[start:end], flags=re.S)
    return blocks


def expected_output(code: str) -> list[str] | None:
    # Trailing "# ..." lines written after the program are its output.
    lines = code.rstrip("\n").split("\n")
    tail: list[str] = []
    while lines and lines[-1].startswith("# "):
        tail.insert(0, lines.pop()[2:])
    if tail:
        return tail
    prints = re.search(r'# prints "([^"]+)"', code)
    return [prints.group(1)] if prints else None


BLOCKS = section_blocks()


def test_the_section_has_its_examples() -> None:
    assert len(BLOCKS) >= 5


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_example_runs(code: str, tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run(
        [sys.executable, "-W", "error::ResourceWarning", "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    want = expected_output(code)
    if want is not None:
        assert proc.stdout.splitlines() == want
    if "trace.json" in code:
        assert (tmp_path / "trace.json").stat().st_size > 0
