"""3.14's asyncio introspection on looplet: the call graph of running tasks, in process
(`asyncio.capture_call_graph`, `print_call_graph`) and from outside (`python -m asyncio
ps PID` and `pstree PID`, which read another process's tasks from its memory).

looplet drives asyncio's own C tasks, so both see its tasks as they see asyncio's:
these tests hold it to that.
"""

from __future__ import annotations

import asyncio
import io
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from support import HANG_LIMIT, reap

pytestmark = pytest.mark.skipif(sys.version_info < (3, 14), reason="asyncio's call graph API is new in 3.14")


def test_capture_call_graph_of_looplet_tasks(loop: asyncio.AbstractEventLoop) -> None:
    async def leaf(ready: asyncio.Event, release: asyncio.Event) -> None:
        ready.set()
        await release.wait()

    async def main() -> tuple[list[str], list[str], str, str]:
        ready, release = asyncio.Event(), asyncio.Event()
        async with asyncio.TaskGroup() as tg:
            child = tg.create_task(leaf(ready, release), name="the-leaf")
            await ready.wait()
            graph = asyncio.capture_call_graph(child)
            assert graph is not None
            frames = [entry.frame.f_code.co_name for entry in graph.call_stack]
            awaited_by = [edge.future.get_name() for edge in graph.awaited_by if isinstance(edge.future, asyncio.Task)]
            out = io.StringIO()
            asyncio.print_call_graph(child, file=out)
            release.set()
        me = asyncio.current_task()
        assert me is not None
        return frames, awaited_by, out.getvalue(), me.get_name()

    frames, awaited_by, printed, main_name = loop.run_until_complete(main())
    # Innermost first: the Event's wait, then the coroutine that awaits it.
    assert frames[:2] == ["wait", "leaf"]
    # Awaited by the task that runs the TaskGroup.
    assert awaited_by == [main_name]
    assert "the-leaf" in printed and "leaf" in printed


PROGRAM = textwrap.dedent(
    """
    import asyncio, sys
    import looplet

    async def worker(event):
        await event.wait()

    async def main():
        event = asyncio.Event()
        async with asyncio.TaskGroup() as tg:
            tg.create_task(worker(event), name="looplet-worker-a")
            tg.create_task(worker(event), name="looplet-worker-b")
            print(type(asyncio.get_running_loop()).__name__, flush=True)
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
            event.set()

    looplet.run(main())
    """
)


@pytest.mark.parametrize("command", ["ps", "pstree"])
def test_python_m_asyncio_lists_a_looplet_programs_tasks(tmp_path: Path, leakcheck: object, command: str) -> None:
    script = tmp_path / "program.py"
    script.write_text(PROGRAM)
    with subprocess.Popen(
        [sys.executable, str(script)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as program:
        try:
            assert program.stdout is not None and program.stdin is not None
            assert program.stdout.readline().strip() == "EventLoop"  # running, tasks started
            shown = subprocess.run(
                [sys.executable, "-m", "asyncio", command, str(program.pid)],
                capture_output=True,
                text=True,
                timeout=HANG_LIMIT,
            )
            program.stdin.write("\n")
            program.stdin.flush()
            assert reap(program) == 0
        finally:
            if program.poll() is None:
                program.kill()
                program.wait()
    assert shown.returncode == 0, shown.stderr
    for name in ("looplet-worker-a", "looplet-worker-b", "worker", "main"):
        assert name in shown.stdout
