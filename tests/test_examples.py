"""The examples/ programs: same output on stock asyncio and on looplet.

Each example runs in a subprocess as `python examples/x.py` (stock asyncio) and as
`python -m looplet examples/x.py`; mixed.py also through
`asyncio.run(main(), loop_factory=looplet.new_event_loop)` (asyncio.Runner on 3.11,
whose asyncio.run has no loop_factory). Every run must exit 0 with the same output,
print no traceback or warning, and name the loop that really ran it (hello.py always
does, as its first line; mixed.py with LOOPLET_EXAMPLE_SHOW_LOOP=1). The output the
README shows for hello.py is what it prints.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"

if sys.version_info >= (3, 12):
    FACTORY_RUN = "asyncio.run(mixed.main(), loop_factory=looplet.new_event_loop)"
else:
    FACTORY_RUN = "with asyncio.Runner(loop_factory=looplet.new_event_loop) as r: r.run(mixed.main())"


def run_example(*args: str, cwd: Path = REPO) -> list[str]:
    env = dict(os.environ)
    env["LOOPLET_EXAMPLE_SHOW_LOOP"] = "1"
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    proc = subprocess.run(
        [sys.executable, "-W", "default", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    for bad in ("Traceback", "Exception ignored", "Warning"):
        assert bad not in proc.stderr, proc.stderr
    return proc.stdout.splitlines()


#: The first line each example prints, on stock asyncio and on looplet.
FIRST_LINES = {
    "hello.py": ("Running on asyncio.unix_events._UnixSelectorEventLoop", "Running on looplet.loop.EventLoop"),
    "mixed.py": ("loop: asyncio.unix_events", "loop: looplet.loop"),
}


@pytest.mark.parametrize("name", ["hello.py", "mixed.py"])
def test_example_same_output_on_asyncio_and_looplet(name):
    stock = run_example(str(EXAMPLES / name))
    on_looplet = run_example("-m", "looplet", str(EXAMPLES / name))
    assert (stock[0], on_looplet[0]) == FIRST_LINES[name]
    assert len(stock) > 3
    assert on_looplet[1:] == stock[1:]


def test_mixed_with_loop_factory():
    stock = run_example(str(EXAMPLES / "mixed.py"))
    via_factory = run_example("-c", f"import asyncio, looplet, mixed\n{FACTORY_RUN}", cwd=EXAMPLES)
    assert via_factory[0] == "loop: looplet.loop"
    assert via_factory[1:] == stock[1:]


def test_hello_output():
    # The README shows this output: keep it stable.
    assert run_example("-m", "looplet", str(EXAMPLES / "hello.py"))[1:] == [
        "Greeting concurrently:",
        "  asyncio is ready",
        "  world is ready",
        "Hello, world! Hello, asyncio!",
        "The timer says: ding",
        "Sent ping, got pong",
        "Caught SIGUSR1",
        "Goodbye!",
    ]


def test_hello_output_in_the_readme():
    readme = (REPO / "README.md").read_text()
    shown = readme.split("python -m looplet examples/hello.py` prints:\n\n```\n", 1)[1].split("```", 1)[0]
    assert shown.splitlines() == run_example("-m", "looplet", str(EXAMPLES / "hello.py"))


def test_mixed_output():
    assert run_example(str(EXAMPLES / "mixed.py"))[1:] == [
        "list: 4 words, crc32 8e9c1a99",
        "motto: 6 words, crc32 75323bd5",
        "poem: 11 words, crc32 c84fe80a",
        "condition met: a+b+c",
        "slow step timed out",
        "got SIGUSR1",
        "echo: HELLO",
        "echo: LOOPLET",
        "done",
    ]
