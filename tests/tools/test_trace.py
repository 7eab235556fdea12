"""Tracing (looplet/tools/observe.py, observer.py): `LOOPLET_TRACE` and track numbers.

`LOOPLET_TRACE=path` records every loop of the process into one valid trace-event
file, a process per loop; a path that cannot be written is reported when the first
loop is made, naming the variable, and the program runs on untraced; a write that
fails when a loop closes is reported on stderr and never raised into the program.
Task tracks are numbered by a counter: a number is never given to a second task,
even after the first was collected. looplet only (stock asyncio has no tracer).
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import looplet

REPO = Path(__file__).resolve().parents[2]


def run_traced(tmp_path: Path, code: str, trace: str) -> subprocess.CompletedProcess[str]:
    prog = tmp_path / "prog.py"
    prog.write_text(textwrap.dedent(code))
    env = dict(os.environ, LOOPLET_TRACE=trace)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-W", "default", str(prog)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def events_by_loop(path: Path) -> dict[int, list[dict[str, Any]]]:
    doc = json.loads(path.read_text())  # valid JSON, or this raises
    by_pid: dict[int, list[dict[str, Any]]] = {}
    for event in doc["traceEvents"]:
        by_pid.setdefault(event["pid"], []).append(event)
    return by_pid


def task_steps(path: Path) -> set[str]:
    return {e["name"] for evs in events_by_loop(path).values() for e in evs if e.get("cat") == "task"}


THREE_LOOPS = """
    import asyncio, looplet, looplet.testing

    async def first():
        await asyncio.sleep(0)

    async def second():
        await asyncio.sleep(0)

    async def third():
        await asyncio.sleep(60)

    looplet.run(first())
    with asyncio.Runner(loop_factory=looplet.new_event_loop) as runner:
        runner.run(second())
    looplet.testing.run(third())
    print("done")
"""


def test_every_loop_of_the_process_is_in_one_trace(tmp_path: Path) -> None:
    path = tmp_path / "trace.json"
    proc = run_traced(tmp_path, THREE_LOOPS, str(path))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "done\n"
    assert proc.stderr == ""
    loops = events_by_loop(path)
    assert sorted(loops) == [1, 2, 3]
    names = {pid: [e["args"]["name"] for e in evs if e["name"] == "process_name"] for pid, evs in loops.items()}
    assert names == {
        1: ["looplet loop 1 (clock: real (perf_counter))"],
        2: ["looplet loop 2 (clock: real (perf_counter))"],
        3: ["looplet loop 3 (clock: logical (virtual clock))"],
    }
    steps = {pid: {e["name"] for e in evs if e.get("cat") == "task"} for pid, evs in loops.items()}
    assert "first" in steps[1] and "second" in steps[2] and "third" in steps[3]


def test_an_unwritable_path_is_reported_at_the_first_loop_naming_the_variable(tmp_path: Path) -> None:
    missing = tmp_path / "no such directory" / "trace.json"
    code = """
        import asyncio, looplet
        print("before")
        loop = looplet.new_event_loop()
        print("made")
        loop.close()
        looplet.run(asyncio.sleep(0))
        print("done")
    """
    proc = run_traced(tmp_path, code, str(missing))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "before\nmade\ndone\n"
    warnings = [line for line in proc.stderr.splitlines() if "Warning" in line]
    assert len(warnings) == 1, proc.stderr
    assert f"RuntimeWarning: LOOPLET_TRACE='{missing}': cannot write the trace file" in warnings[0]
    assert "this process runs untraced" in warnings[0]
    assert "Traceback" not in proc.stderr


def test_a_failed_write_at_close_is_reported_not_raised(tmp_path: Path) -> None:
    trace_dir = tmp_path / "traces"
    trace_dir.mkdir()
    path = trace_dir / "trace.json"
    code = f"""
        import asyncio, os, looplet

        async def main():
            # The trace's directory goes away while the loop runs.
            os.remove({str(path)!r})
            os.rmdir({str(trace_dir)!r})

        looplet.run(main())
        print("done")
    """
    proc = run_traced(tmp_path, code, str(path))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "done\n"
    assert proc.stderr.startswith(f"looplet: LOOPLET_TRACE='{path}': could not add loop 1's trace: ")
    assert "Traceback" not in proc.stderr


def test_a_forked_child_traces_to_a_file_of_its_own(tmp_path: Path) -> None:
    path = tmp_path / "trace.json"
    code = """
        import asyncio, os, looplet

        async def parent_task():
            await asyncio.sleep(0)

        async def child_task():
            await asyncio.sleep(0)

        looplet.run(parent_task())
        pid = os.fork()
        if pid == 0:
            looplet.run(child_task())
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        print(os.waitstatus_to_exitcode(status), pid)
    """
    proc = run_traced(tmp_path, code, str(path))
    assert proc.returncode == 0, proc.stderr
    code_, child = proc.stdout.split()
    assert code_ == "0"
    parent_steps = task_steps(path)
    child_steps = task_steps(tmp_path / f"trace.{child}.json")
    assert "parent_task" in parent_steps and "child_task" not in parent_steps
    assert "child_task" in child_steps


def test_track_numbers_are_never_reused(tmp_path: Path, leakcheck: Any) -> None:
    path = tmp_path / "trace.json"

    async def step(n: int) -> None:
        await asyncio.sleep(0)

    async def main() -> None:
        with looplet.trace(path):
            for n in range(3):
                await asyncio.create_task(step(n))
                # The finished task goes: its track's table entry with it.
                gc.collect()

    looplet.run(main())
    doc = json.loads(path.read_text())
    tracks = [e["tid"] for e in doc["traceEvents"] if e["name"] == "thread_name" and e["tid"] != 0]
    assert len(tracks) == len(set(tracks)) >= 4  # main, and each of the three tasks
