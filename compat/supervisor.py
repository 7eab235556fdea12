"""Run test modules in worker subprocesses with timeouts, resuming after hangs.

Role: start ``python -m compat.worker`` for one module, follow its JSON-lines
stream while it runs, enforce the per-test and per-module timeouts, and turn
the stream into a :class:`compat.results.ModuleResult`; run many modules on
a small pool of parallel workers.

Invariant owned here: a hung or crashing test costs that test, not the
module: the worker's process group is killed, the test is recorded as
``timeout`` or ``crash`` with the tail of the worker's log (which holds a
faulthandler traceback for hangs), and a fresh worker resumes the module with
every already-recorded test skipped.  A resumed worker that records nothing
new stops the resumption, so a hang outside any test (a class or module
fixture) cannot loop forever; the module is then ``timeout``/``crash``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compat import results, tiers

REPO_ROOT = Path(__file__).resolve().parent.parent
POLL_INTERVAL = 0.1
LOG_TAIL = 3000

# Rough cost under stock asyncio (seconds, 3.12, this machine): the longest
# modules start first so two workers finish together.
COST_HINT = {
    "test_tasks": 20,
    "test_events": 12,
    "test_subprocess": 12,
    "test_ssl": 11,
    "test_taskgroups": 6,
    "test_sslproto": 5,
    "test_futures": 3,
    "test_sock_lowlevel": 3,
    "test_sendfile": 2,
    "test_base_events": 2,
}


@dataclass
class Limits:
    module_timeout: float = 600.0
    test_timeout: float = 60.0
    memory_limit_mib: int = 4096
    max_restarts: int = 50


class _JsonlTail:
    """Reads complete lines appended to a file since the last call."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._offset = 0
        self._partial = b""

    def read(self) -> Iterator[dict[str, Any]]:
        try:
            with open(self._path, "rb") as handle:
                handle.seek(self._offset)
                chunk = handle.read()
        except FileNotFoundError:
            return
        self._offset += len(chunk)
        data = self._partial + chunk
        *lines, self._partial = data.split(b"\n")
        for line in lines:
            if line.strip():
                yield json.loads(line)


def _tail(path: Path, limit: int = LOG_TAIL) -> str:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return ""
    text = data[-limit:].decode("utf-8", "replace")
    return text if len(data) <= limit else "...\n" + text


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    # The worker leads its own session, so this reaches the test's children
    # (subprocess tests, executors) too, and nothing outside the worker.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _worker_env() -> dict[str, str]:
    env = dict(os.environ)
    paths = [str(REPO_ROOT)]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


class _ModuleRun:
    """State of one module across worker (re)starts."""

    def __init__(self, python: str, loop: str, module: str, workdir: Path, limits: Limits, package: str) -> None:
        self.python = python
        self.package = package
        self.loop = loop
        self.limits = limits
        self.workdir = workdir
        self.result = results.ModuleResult(name=module, tier=tiers.classify(module, warn=False).tier)
        self.header: dict[str, Any] = {}
        self._planned: set[str] = set()

    @property
    def name(self) -> str:
        return self.result.name

    def _record(self, event: dict[str, Any]) -> None:
        self.result.tests[event["id"]] = results.TestRecord(
            outcome=event["outcome"],
            exercised=event["exercised"],
            loops=event["loops"],
            duration=event["duration"],
            detail=event["detail"],
        )

    def run(self) -> results.ModuleResult:
        started = time.monotonic()
        deadline = started + self.limits.module_timeout
        attempt = 0
        while True:
            before = len(self.result.tests)
            verdict = self._attempt(attempt, deadline)
            if verdict is None:
                break
            attempt += 1
            progressed = len(self.result.tests) > before
            if not progressed or attempt > self.limits.max_restarts or time.monotonic() >= deadline:
                self.result.status = verdict
                break
        self.result.restarts = attempt
        self.result.planned = len(self._planned)
        self.result.duration = round(time.monotonic() - started, 2)
        return self.result

    def _attempt(self, attempt: int, deadline: float) -> str | None:
        """One worker process; returns a module status to retry under, or None."""
        stem = f"{self.loop.replace('.', '_')}-{self.name}-{attempt}"
        out = self.workdir / f"{stem}.jsonl"
        log = self.workdir / f"{stem}.log"
        skip = self.workdir / f"{stem}.skip"
        skip.write_text("".join(f"{tid}\n" for tid in self.result.tests), encoding="utf-8")
        cwd = self.workdir / f"{stem}.cwd"
        cwd.mkdir(exist_ok=True)
        cmd = [
            self.python,
            "-m",
            "compat.worker",
            "--loop",
            self.loop,
            "--module",
            self.name,
            "--out",
            str(out),
            "--skip-file",
            str(skip),
            "--package",
            self.package,
            "--test-timeout",
            str(self.limits.test_timeout),
            "--memory-limit",
            str(self.limits.memory_limit_mib),
        ]
        with open(log, "wb") as log_handle:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log_handle,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                env=_worker_env(),
                start_new_session=True,
            )
        tail = _JsonlTail(out)
        current: str | None = None
        last_event = time.monotonic()
        finished: str | None = None
        killed: str | None = None

        def consume() -> None:
            nonlocal current, last_event, finished
            for event in tail.read():
                last_event = time.monotonic()
                kind = event["event"]
                if kind == "start":
                    current = event["id"]
                elif kind == "result":
                    self._record(event)
                    current = None
                elif kind == "injected":
                    self.header = event
                    self.result.injected = True
                elif kind == "plan":
                    self._planned.update(event["tests"])
                    self.result.reference = event.get("reference")
                elif kind == "done":
                    finished = finished or results.COMPLETED
                elif kind == "module-skipped":
                    finished = results.MODULE_SKIPPED
                    self.result.detail = event["detail"]
                elif kind in ("import-error", "injection-failed"):
                    finished = results.IMPORT_ERROR if kind == "import-error" else results.INJECTION_FAILED
                    self.result.detail = event["detail"]

        while proc.poll() is None:
            consume()
            now = time.monotonic()
            if now >= deadline:
                killed = results.MODULE_TIMEOUT
            elif now - last_event >= self.limits.test_timeout:
                killed = "test-timeout"
            if killed:
                _kill_group(proc)
                break
            time.sleep(POLL_INTERVAL)
        consume()
        if finished is not None:
            if finished != results.COMPLETED or proc.returncode not in (0, None):
                if finished == results.COMPLETED:
                    # All tests ran, then the process died (teardown, exit).
                    self.result.status = results.MODULE_CRASH
                    self.result.detail = f"worker exited {proc.returncode} after the last test:\n{_tail(log)}"
                    return None
                self.result.status = finished
                if finished in (results.IMPORT_ERROR, results.INJECTION_FAILED):
                    self.result.detail += f"\n--- worker log ---\n{_tail(log)}"
                return None
            self.result.status = results.COMPLETED
            return None
        if killed:
            outcome, status = results.TIMEOUT, results.MODULE_TIMEOUT
            why = (
                f"no progress for {self.limits.test_timeout:g}s"
                if killed == "test-timeout"
                else f"module timeout {self.limits.module_timeout:g}s"
            )
        else:
            outcome, status = results.CRASH, results.MODULE_CRASH
            why = f"worker exited with code {proc.returncode}"
        if current is not None:
            self.result.tests[current] = results.TestRecord(
                outcome=outcome,
                exercised=results.EXERCISED_UNKNOWN,
                detail=f"{why}\n--- worker log ---\n{_tail(log)}",
            )
        else:
            self.result.detail = f"{why} outside any test\n{_tail(log)}"
        if killed == results.MODULE_TIMEOUT:
            self.result.status = results.MODULE_TIMEOUT
            return None
        return status


def run_modules(
    python: str,
    loop: str,
    modules: list[str],
    *,
    jobs: int,
    limits: Limits,
    workdir: Path | None = None,
    progress: Callable[[results.ModuleResult], None] | None = None,
    package: str = tiers.TEST_PACKAGE,
) -> tuple[dict[str, results.ModuleResult], dict[str, Any]]:
    """Run ``modules`` on ``jobs`` workers; also return one worker header."""
    base = workdir or Path(tempfile.mkdtemp(prefix="compat-"))
    base.mkdir(parents=True, exist_ok=True)
    ordered = sorted(modules, key=lambda name: (-COST_HINT.get(name, 1), name))
    runs = [_ModuleRun(python, loop, name, base, limits, package) for name in ordered]

    def one(module_run: _ModuleRun) -> results.ModuleResult:
        result = module_run.run()
        if progress is not None:
            progress(result)
        return result

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        done = list(pool.map(one, runs))
    header: dict[str, Any] = {}
    for module_run in runs:
        if module_run.header:
            header = module_run.header
            break
    return {result.name: result for result in sorted(done, key=lambda r: r.name)}, header


def default_python() -> str:
    return sys.executable
