"""One measurement = one fresh worker process; and which loops can be run at all.

Role: start ``python -m benchmarks.worker`` for one workload on one loop, in a new
session (its process group holds the worker and every client or child it starts),
wait for it with a timeout, and turn what it wrote into a `Sample`. A fresh process
per measurement means no loop inherits another's warm caches, allocator state,
threads or leaked fds, and a crash or hang costs one measurement, not the run.

Invariant owned here: a `Sample` has a value only if the worker exited 0, wrote an
``ok`` result, and every loop that ran the workload is of the requested loop
module's package; anything else is a `Sample` with an error, never an exception.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.registry import Workload
from benchmarks.results import Sample, check_loop_classes

REPO: Path = Path(__file__).resolve().parent.parent
# Seconds between the worker's own timeout (it dumps its stacks and exits) and the
# harness killing its process group: time for the dump to reach us.
KILL_GRACE: float = 10.0
STDERR_TAIL: int = 4000


def unavailable(loop: str) -> str | None:
    """Why ``loop`` cannot be imported (None: it can), without importing it here."""
    try:
        spec = importlib.util.find_spec(loop)
    except (ImportError, ValueError) as exc:
        return f"not importable: {exc}"
    return None if spec is not None else f"not importable: no module named {loop!r}"


def worker_env() -> dict[str, str]:
    """The harness's environment, with this repository first on the import path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    return env


def pinning(mode: str) -> tuple[str, str] | None:
    """(worker CPUs, client CPUs) for ``--pin MODE``, as ``--cpus`` arguments.

    ``shared``: the worker, its children and its clients on one CPU, so a round trip
    never waits for another CPU to wake up (on the 2-vCPU VM these numbers come from,
    a cross-CPU wake-up costs a few hundred microseconds and the OS's placement varies
    from run to run: unpinned single-client round trips varied 5x between repetitions).
    ``split``: the worker on the first CPU, clients on the others. ``none``: the OS.
    """
    cpus = sorted(os.sched_getaffinity(0))
    if mode == "shared":
        return str(cpus[-1]), str(cpus[-1])
    if mode == "split" and len(cpus) > 1:
        return str(cpus[0]), ",".join(map(str, cpus[1:]))
    if mode == "split":
        raise ValueError("--pin split needs at least 2 CPUs")
    return None


def placement(workload: Workload, pin: str) -> str:
    """The ``--pin`` mode ``workload`` runs with: its own if it has one, else ``pin``.

    A workload that always splits (the server against wrk) shares one CPU on a machine
    that has only one: there is no other placement.
    """
    mode = workload.pin or pin
    if mode == "split" and workload.pin == "split" and len(os.sched_getaffinity(0)) < 2:
        return "shared"
    return mode


def worker_command(
    workload: Workload, loop: str, *, quick: bool, out: Path, timeout: float, pin: str = "none"
) -> list[str]:
    command = [sys.executable, "-m", "benchmarks.worker", "--loop", loop, "--target", workload.target]
    command += ["--n", str(workload.size(quick)), "--params", json.dumps(dict(workload.params))]
    command += ["--out", str(out), "--timeout", str(timeout)]
    cpus = pinning(placement(workload, pin))
    if cpus is not None:
        command += ["--cpus", cpus[0], "--client-cpus", cpus[1]]
    return [*command, "--quick"] if quick else command


def _tail(text: bytes) -> str:
    decoded = text.decode(errors="replace").strip()
    return decoded if len(decoded) <= STDERR_TAIL else "...\n" + decoded[-STDERR_TAIL:]


def measure(
    workload: Workload, loop: str, repetition: int, *, quick: bool, timeout: float, pin: str = "none"
) -> Sample:
    """Run one measurement in a fresh worker process."""

    def failed(error: str, **details: Any) -> Sample:
        return Sample(workload.name, loop, repetition, error=error, details=details)

    with tempfile.TemporaryDirectory(prefix="looplet-bench-") as directory:
        out = Path(directory) / "result.json"
        proc = subprocess.Popen(
            worker_command(workload, loop, quick=quick, out=out, timeout=timeout, pin=pin),
            cwd=directory,
            env=worker_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        try:
            _, stderr = proc.communicate(timeout=timeout + KILL_GRACE)
        except subprocess.TimeoutExpired:
            # The group is still ours: its leader is not reaped until communicate().
            os.killpg(proc.pid, signal.SIGKILL)
            _, stderr = proc.communicate()
            return failed(f"timed out after {timeout:.0f} s", stderr=_tail(stderr))
        except BaseException:
            # Ctrl-C reaches only the harness (the worker has its own session).
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
        # A worker that ended early (a crash, its own faulthandler timeout) may leave its
        # client processes running: end what is left of its group. While they live, the
        # group id stays theirs (Linux does not hand out a pid still used as a group id).
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        if not out.exists():
            return failed(f"worker exited with status {proc.returncode} and no result:\n{_tail(stderr)}")
        result: dict[str, Any] = json.loads(out.read_text())
    if result.get("status") == "unsupported":
        return Sample(workload.name, loop, repetition, error=str(result.get("error")), unsupported=True)
    if result.get("status") != "ok":
        return failed(str(result.get("error")), traceback=result.get("traceback"), stderr=_tail(stderr))
    if proc.returncode != 0:
        return failed(f"worker exited with status {proc.returncode} after an ok result:\n{_tail(stderr)}")
    problem = check_loop_classes(loop, result.get("loop_classes", []))
    if problem:
        return failed(f"loop check: {problem}")
    details: dict[str, Any] = {
        key: result[key] for key in ("amount", "seconds", "loop_classes", "loop_version") if key in result
    }
    details["pin"] = placement(workload, pin)
    details.update(result.get("details") or {})
    if result.get("loop_errors"):
        details["loop_errors"] = result["loop_errors"]
    return Sample(workload.name, loop, repetition, value=float(result["value"]), details=details)
