"""`python -m downstream`: other projects' test suites, on stock asyncio and on looplet.

Role: for each project of downstream/projects.py, fetch its pinned sdist (for the
tests), make its venv from its lock file (the project and its test dependencies, from
PyPI), run its selected tests twice with downstream/plugin.py loaded, once on asyncio
and once on looplet, and compare: print the counts on each loop, the wall times, and
the tests that pass on asyncio but not on looplet.

Invariant owned here: the exit status is 0 only if, for every project, both runs
finished, each verifiably ran on its own loop (the plugin's records: see
downstream/results.py), and every test that passed on asyncio passed on looplet, but
for the entries of downstream/expected.txt, each of which was used. A test that failed
on looplet in the first run and passed when rerun alone is reported as flaky and does
not fail the run; the rerun is on looplet only, serial, once.

Downloads, venvs and run directories live in the cache directory (`--cache`, else
$DOWNSTREAM_CACHE, else /tmp/looplet-downstream), never in the repository; one run at a
time uses a cache directory (a lock file says so).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from downstream import expected, results
from downstream.expected import Expectation
from downstream.projects import PROJECTS, Project, by_name

REPO_ROOT: Final = Path(__file__).resolve().parent.parent
DEFAULT_CACHE: Final = "/tmp/looplet-downstream"
LOOPS: Final = ("asyncio", "looplet")
# Per-test limit (pytest-timeout): a hung test costs this, not the run.
TEST_TIMEOUT: Final = 30
# More regressions than this are not rerun one by one: they are no flakes.
RERUN_LIMIT: Final = 150
# pytest's exit statuses for a session that ran to its end (some tests may have failed).
COMPLETE: Final = (0, 1)
# Variables of the caller's environment that would change what the test runs do.
SCRUBBED_ENV: Final = ("PYTHONPATH", "PYTEST_ADDOPTS", "PYTEST_PLUGINS", "PYTHONSTARTUP")


def log(message: str) -> None:
    print(message, flush=True)


# -- preparing a project -----------------------------------------------------------------


def run_quiet(cmd: Sequence[str | Path], what: str) -> None:
    """Run a setup command; on failure show its output and raise."""
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.stdout.write(proc.stdout[-4000:])
        sys.stdout.write(proc.stderr[-4000:])
        raise SetupError(f"{what} failed (exit {proc.returncode}): {' '.join(map(str, cmd))}")


class SetupError(Exception):
    """A project could not be made ready to run: the run fails, saying why."""


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def ensure_venv(project: Project, cache: Path) -> Path:
    """The project's venv, made from its lock file if no complete one is cached."""
    lock = project.requirements.read_bytes()
    key = hashlib.sha256(lock + sys.version.encode()).hexdigest()[:12]
    venv = cache / "venvs" / f"{project.name}-py{sys.version_info[0]}.{sys.version_info[1]}-{key}"
    stamp = venv / "downstream-complete"
    if stamp.exists():
        return venv
    shutil.rmtree(venv, ignore_errors=True)
    run_quiet([sys.executable, "-m", "venv", venv], f"{project.name}: venv")
    run_quiet(
        [
            venv_python(venv),
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            "--no-input",
            "-r",
            project.requirements,
        ],
        f"{project.name}: pip install",
    )
    stamp.write_text(project.requirements.read_text(encoding="utf-8"), encoding="utf-8")
    return venv


def link_checkout(venv: Path, cache: Path) -> None:
    """Make this checkout's looplet and downstream importable in the venv, and nothing
    else of the repository (its tests/ would shadow a project's tests package)."""
    path = cache / "importpath" / hashlib.sha256(str(REPO_ROOT).encode()).hexdigest()[:12]
    path.mkdir(parents=True, exist_ok=True)
    for name in ("looplet", "downstream"):
        link = path / name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(REPO_ROOT / name)
    site = subprocess.run(
        [str(venv_python(venv)), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (Path(site) / "downstream-looplet.pth").write_text(f"{path}\n", encoding="utf-8")


def ensure_sdist(project: Project, cache: Path, venv: Path) -> Path:
    sdists = cache / "sdists"
    sdist = sdists / project.sdist_name
    if not (sdist.exists() and sha256(sdist) == project.sdist_sha256):
        sdists.mkdir(parents=True, exist_ok=True)
        run_quiet(
            [
                venv_python(venv),
                "-m",
                "pip",
                "download",
                "-q",
                "--disable-pip-version-check",
                "--no-deps",
                "--no-binary",
                ":all:",
                "-d",
                sdists,
                f"{project.name}=={project.version}",
            ],
            f"{project.name}: pip download (sdist)",
        )
    if not sdist.exists():
        raise SetupError(f"{project.name}: pip download left no {sdist}")
    digest = sha256(sdist)
    if digest != project.sdist_sha256:
        raise SetupError(f"{project.name}: {sdist.name} has sha256 {digest}, expected {project.sdist_sha256}")
    return sdist


def unpack(project: Project, sdist: Path, where: Path) -> Path:
    """A fresh copy of the sdist's tree without the project's own source."""
    shutil.rmtree(where, ignore_errors=True)
    where.mkdir(parents=True)
    with tarfile.open(sdist) as tar:
        tar.extractall(where, filter="data")
    root = where / f"{project.name}-{project.version}"
    if not root.is_dir():
        raise SetupError(f"{project.name}: {sdist.name} has no top directory {root.name}")
    for relative in project.remove:
        shutil.rmtree(root / relative)
    return root


# -- services ----------------------------------------------------------------------------


@dataclass
class Service:
    """A server process the runner started for one run, and how to reach it."""

    proc: subprocess.Popen[bytes]
    url: str

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start_redis(workdir: Path) -> Service:
    """redis-server on 127.0.0.1, no persistence, ready (it answered PING)."""
    exe = shutil.which("redis-server")
    if exe is None:
        raise SetupError("redis-server not found: the redis project needs it (Debian: apt-get install redis-server)")
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    port = free_port()
    # A short race: another process may take the port between free_port() and here.
    # The PING below then fails, and so does the project, saying why.
    proc = subprocess.Popen(
        [
            *(exe, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"),
            *("--dir", str(workdir), "--logfile", str(workdir / "redis.log"), "--daemonize", "no"),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    service = Service(proc, f"redis://127.0.0.1:{port}/0")
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
                conn.sendall(b"PING\r\n")
                if conn.recv(64).startswith(b"+PONG"):
                    return service
        except OSError:
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    service.stop()
    raise SetupError(f"redis-server on port {port} did not answer PING (see {workdir / 'redis.log'})")


def start_services(project: Project, cache: Path) -> dict[str, Service]:
    """One server per loop's run, or none."""
    if project.service is None:
        return {}
    if project.service != "redis":
        raise SetupError(f"{project.name}: unknown service {project.service!r}")
    services: dict[str, Service] = {}
    try:
        for loop in LOOPS:
            services[loop] = start_redis(cache / "services" / f"{project.name}-{loop}")
    except SetupError:
        for service in services.values():
            service.stop()
        raise
    return services


# -- running the tests -------------------------------------------------------------------


@dataclass
class Run:
    """One pytest process: a project's tests on one loop."""

    loop: str
    cwd: Path
    results: Path
    log: Path
    #: What replaces `{redis_url}` in the project's pytest arguments.
    redis_url: str = ""
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    seconds: float = 0.0
    timed_out: bool = False


def localhost_has_ipv6() -> bool:
    try:
        return bool(socket.getaddrinfo("localhost", None, socket.AF_INET6))
    except OSError:
        return False


def deselected(project: Project) -> tuple[str, ...]:
    if project.deselect_without_ipv6_localhost and not localhost_has_ipv6():
        return project.deselect + project.deselect_without_ipv6_localhost
    return project.deselect


def start_run(project: Project, venv: Path, run: Run, cache: Path, only: Path | None = None) -> None:
    run.results.parent.mkdir(parents=True, exist_ok=True)
    run.results.unlink(missing_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED_ENV}
    env.update(
        {
            "DOWNSTREAM_LOOP": run.loop,
            "DOWNSTREAM_RESULTS": str(run.results),
            "DOWNSTREAM_MODULE": project.module,
            "DOWNSTREAM_DESELECT": ",".join(deselected(project)),
        }
    )
    if only is not None:
        env["DOWNSTREAM_ONLY"] = str(only)
    # pytest empties its --basetemp at the start; each run has its own.
    basetemp = cache / "tmp" / f"{project.name}-{run.loop}{'-rerun' if only else ''}"
    basetemp.parent.mkdir(parents=True, exist_ok=True)
    cmd = [
        str(venv_python(venv)),
        "-m",
        "pytest",
        "-p",
        "downstream.plugin",
        "-p",
        "no:cacheprovider",
        "-q",
        "--tb=short",
        "--color=no",
        f"--timeout={TEST_TIMEOUT}",
        f"--basetemp={basetemp}",
        *(arg.replace("{redis_url}", run.redis_url) for arg in project.pytest_args),
    ]
    run.log.parent.mkdir(parents=True, exist_ok=True)
    with run.log.open("wb") as out:
        out.write(("$ " + " ".join(cmd) + "\n").encode())
        out.flush()
        # A session of its own: a kill on timeout takes the test's children too.
        run.proc = subprocess.Popen(
            cmd,
            cwd=run.cwd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    run.started = time.monotonic()


def wait_runs(runs: Sequence[Run], timeout: float) -> None:
    """Wait for every run; a run still going after `timeout` seconds is killed."""
    deadline = time.monotonic() + timeout
    for run in runs:
        assert run.proc is not None
        try:
            run.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            run.timed_out = True
            with contextlib.suppress(ProcessLookupError):
                os.killpg(run.proc.pid, signal.SIGKILL)
            run.proc.wait()
        run.seconds = time.monotonic() - run.started


def run_loops(
    project: Project, venv: Path, rundirs: dict[str, Path], cache: Path, jobs: int, services: dict[str, Service]
) -> dict[str, Run]:
    runs = {
        loop: Run(
            loop=loop,
            cwd=rundirs[loop],
            results=cache / "results" / f"{project.name}-{loop}.jsonl",
            log=cache / "logs" / f"{project.name}-{loop}.log",
            redis_url=services[loop].url if loop in services else "",
        )
        for loop in LOOPS
    }
    if jobs >= 2:
        # The two loops at once, one core each: half the wall time. A test that fails
        # on looplet only under this load is rerun alone (see rerun()).
        for run in runs.values():
            start_run(project, venv, run, cache)
        wait_runs(list(runs.values()), project.run_timeout)
    else:
        for run in runs.values():
            start_run(project, venv, run, cache)
            wait_runs([run], project.run_timeout)
    return runs


def rerun(
    project: Project, venv: Path, rundir: Path, cache: Path, nodeids: list[str], service: Service | None
) -> results.RunResult:
    """The given tests again, on looplet, alone: which failures were the load's."""
    only = cache / "results" / f"{project.name}-rerun-ids.txt"
    only.write_text("".join(f"{n}\n" for n in nodeids), encoding="utf-8")
    run = Run(
        loop="looplet",
        cwd=rundir,
        results=cache / "results" / f"{project.name}-looplet-rerun.jsonl",
        log=cache / "logs" / f"{project.name}-looplet-rerun.log",
        redis_url=service.url if service is not None else "",
    )
    start_run(project, venv, run, cache, only=only)
    wait_runs([run], project.run_timeout)
    return results.read_run(run.results, "looplet")


def log_tail(path: Path, lines: int = 12) -> list[str]:
    try:
        return path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
    except OSError:
        return []


# -- one project, start to end -----------------------------------------------------------


@dataclass
class Outcome:
    """What one project's check found."""

    project: Project
    runs: dict[str, results.RunResult] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    #: Tests that passed on asyncio and not on looplet, after the rerun, not expected.
    regressions: list[str] = field(default_factory=list)
    #: Failed on looplet in the parallel run, passed alone.
    flaky: list[str] = field(default_factory=list)
    #: Regressions that expected.txt lists, with its reason.
    expected: list[tuple[str, str]] = field(default_factory=list)
    #: expected.txt entries of this project that did not match a regression.
    stale: list[Expectation] = field(default_factory=list)
    #: Why the run cannot be trusted: setup failures, unfinished runs, swap problems.
    errors: list[str] = field(default_factory=list)
    logs: dict[str, Path] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not (self.regressions or self.stale or self.errors)


def check_project(project: Project, cache: Path, jobs: int, expectations: list[Expectation]) -> Outcome:
    outcome = Outcome(project)
    t0 = time.monotonic()
    services: dict[str, Service] = {}
    try:
        return _check_project(project, cache, jobs, expectations, outcome, services, t0)
    finally:
        for service in services.values():
            service.stop()


def _check_project(
    project: Project,
    cache: Path,
    jobs: int,
    expectations: list[Expectation],
    outcome: Outcome,
    services: dict[str, Service],
    t0: float,
) -> Outcome:
    try:
        venv = ensure_venv(project, cache)
        link_checkout(venv, cache)
        sdist = ensure_sdist(project, cache, venv)
        rundirs = {loop: unpack(project, sdist, cache / "run" / f"{project.name}-{loop}") for loop in LOOPS}
        services.update(start_services(project, cache))
    except (SetupError, OSError, subprocess.CalledProcessError, tarfile.TarError) as exc:
        outcome.errors.append(f"setup: {exc}")
        outcome.seconds["setup"] = time.monotonic() - t0
        return outcome
    outcome.seconds["setup"] = time.monotonic() - t0
    ready = f"ready ({outcome.seconds['setup']:.0f} s)"
    log(f"::: downstream {project.name} {project.version}: {ready}; running its tests on both loops")
    if deselected(project) != project.deselect:
        ids = ", ".join(project.deselect_without_ipv6_localhost)
        log(f"    localhost has no IPv6 address here: deselected on both loops: {ids}")

    t1 = time.monotonic()
    runs = run_loops(project, venv, rundirs, cache, jobs, services)
    outcome.seconds["tests"] = time.monotonic() - t1
    for loop, run in runs.items():
        result = results.read_run(run.results, loop)
        outcome.runs[loop] = result
        outcome.seconds[loop] = run.seconds
        outcome.logs[loop] = run.log
        if run.timed_out:
            outcome.errors.append(f"{loop}: the run was killed after {project.run_timeout:.0f} s (see {run.log})")
        elif result.exitstatus not in COMPLETE:
            tail = "".join(f"\n        | {line}" for line in log_tail(run.log))
            outcome.errors.append(f"{loop}: pytest ended with exit status {result.exitstatus} (see {run.log}):{tail}")
        outcome.errors.extend(
            f"{loop}: {problem}" for problem in results.swap_problems(result, str(venv), REPO_ROOT / "looplet")
        )

    found = results.regressions(outcome.runs["asyncio"], outcome.runs["looplet"])
    if found and len(found) <= RERUN_LIMIT and not outcome.errors:
        t2 = time.monotonic()
        again = rerun(project, venv, rundirs["looplet"], cache, found, services.get("looplet"))
        outcome.seconds["rerun"] = time.monotonic() - t2
        outcome.flaky = [n for n in found if n in again.passed()]
        found = [n for n in found if n not in again.passed()]

    mine = {e.nodeid: e for e in expectations if e.project == project.name}
    outcome.expected = [(n, mine[n].reason) for n in found if n in mine]
    outcome.regressions = [n for n in found if n not in mine]
    used = {n for n, _ in outcome.expected}
    outcome.stale = [e for e in mine.values() if e.nodeid not in used]
    outcome.seconds["total"] = time.monotonic() - t0
    return outcome


# -- the report --------------------------------------------------------------------------


def counts_line(result: results.RunResult) -> str:
    c = result.counts()
    return ", ".join(f"{c.get(o, 0)} {o}" for o in results.OUTCOMES)


def report(outcome: Outcome) -> None:
    p = outcome.project
    s = outcome.seconds
    times = ", ".join(f"{k} {v:.0f} s" for k, v in s.items() if k != "total")
    log(f"=== {p.name} {p.version}: {'ok' if outcome.ok else 'FAILED'} ({s.get('total', 0.0):.0f} s: {times})")
    for loop, result in outcome.runs.items():
        seen = sum(1 for t in result.tests.values() if t.loop is not None)
        log(f"    {loop:8s} {counts_line(result)}  (loop seen in {seen} tests; log {outcome.logs.get(loop)})")
    for error in outcome.errors:
        log(f"    ERROR {error}")
    looplet = outcome.runs.get("looplet")
    if outcome.regressions:
        log(f"    {len(outcome.regressions)} test(s) pass on asyncio, not on looplet:")
        for nodeid in outcome.regressions:
            test = looplet.tests.get(nodeid) if looplet else None
            why = f"{test.outcome}: {test.message}" if test else "not run on looplet"
            log(f"      {nodeid}\n          {why}")
    for nodeid in outcome.flaky:
        log(f"    flaky on looplet (failed in the parallel run, passed alone): {nodeid}")
    for nodeid, reason in outcome.expected:
        log(f"    expected on looplet (downstream/expected.txt): {nodeid}  # {reason}")
    for entry in outcome.stale:
        log(
            f"    STALE expected.txt line {entry.line}: {entry.project} {entry.nodeid} "
            "passes on looplet, or no longer passes on asyncio"
        )


def write_json(path: Path, outcomes: list[Outcome], seconds: float) -> None:
    data = {
        "python": sys.version.split()[0],
        "seconds": round(seconds, 1),
        "projects": [
            {
                "name": o.project.name,
                "version": o.project.version,
                "ok": o.ok,
                "seconds": {k: round(v, 1) for k, v in o.seconds.items()},
                "counts": {loop: dict(r.counts()) for loop, r in o.runs.items()},
                "regressions": [
                    {
                        "test": n,
                        "looplet": (o.runs["looplet"].tests[n].message if n in o.runs["looplet"].tests else "not run"),
                    }
                    for n in o.regressions
                ],
                "flaky": o.flaky,
                "expected": [{"test": n, "reason": r} for n, r in o.expected],
                "stale": [e.nodeid for e in o.stale],
                "errors": o.errors,
            }
            for o in outcomes
        ],
    }
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


# -- locks -------------------------------------------------------------------------------


def update_lock(project: Project, cache: Path) -> None:
    """Rewrite the project's lock file from a fresh venv of its direct requirements."""
    venv = cache / "venvs" / f"{project.name}-lock"
    shutil.rmtree(venv, ignore_errors=True)
    run_quiet([sys.executable, "-m", "venv", venv], f"{project.name}: venv")
    run_quiet(
        [venv_python(venv), "-m", "pip", "install", "-q", "--disable-pip-version-check", *project.direct_requirements],
        f"{project.name}: pip install",
    )
    frozen = subprocess.run(
        [str(venv_python(venv)), "-m", "pip", "freeze", "--disable-pip-version-check", "--all", "--exclude", "pip"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    header = (
        f"# {project.name} {project.version} and its test dependencies, for downstream/ (python -m downstream).\n"
        f"# Made by `python -m downstream --update-locks --projects {project.name}` on Python "
        f"{sys.version.split()[0]} from:\n" + "".join(f"#   {r}\n" for r in project.direct_requirements)
    )
    project.requirements.write_text(header + frozen, encoding="utf-8")
    shutil.rmtree(venv, ignore_errors=True)
    log(f"wrote {project.requirements}")


@contextlib.contextmanager
def cache_lock(cache: Path) -> Iterator[None]:
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / ".lock").open("w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"downstream: waiting for another run using {cache}")
            fcntl.flock(f, fcntl.LOCK_EX)
        yield


# -- the command line --------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m downstream",
        description="Run downstream projects' test suites on stock asyncio and on looplet, and compare.",
    )
    parser.add_argument(
        "--projects", default="", help=f"comma-separated, default all: {','.join(p.name for p in PROJECTS)}"
    )
    parser.add_argument("--cache", default=None, help=f"cache directory (default $DOWNSTREAM_CACHE or {DEFAULT_CACHE})")
    parser.add_argument(
        "-j",
        "--jobs",
        type=int,
        default=2,
        choices=(1, 2),
        help="2 (default): both loops of a project at once; 1: one after the other",
    )
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--list", action="store_true", help="list the projects and their test selections, and exit")
    parser.add_argument(
        "--update-locks", action="store_true", help="rewrite the lock files (downstream/requirements/) and exit"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        projects = by_name(args.projects)
        expectations = expected.load({p.name for p in PROJECTS})
    except (KeyError, ValueError) as exc:
        print(f"python -m downstream: {exc}", file=sys.stderr)
        return 2
    if args.list:
        for p in projects:
            log(f"{p.name} {p.version}: {p.selection}")
        return 0
    cache = Path(args.cache or os.environ.get("DOWNSTREAM_CACHE") or DEFAULT_CACHE).resolve()
    t0 = time.monotonic()
    with cache_lock(cache):
        if args.update_locks:
            for p in projects:
                update_lock(p, cache)
            return 0
        outcomes = []
        for p in projects:
            outcome = check_project(p, cache, args.jobs, expectations)
            report(outcome)
            outcomes.append(outcome)
    seconds = time.monotonic() - t0
    if args.json:
        write_json(Path(args.json), outcomes, seconds)
    failed = [o.project.name for o in outcomes if not o.ok]
    total = sum(len(o.regressions) for o in outcomes)
    log(
        f"=== downstream: {len(outcomes)} project(s) in {seconds:.0f} s; "
        f"{total} test(s) pass on asyncio and not on looplet; " + (f"FAILED: {', '.join(failed)}" if failed else "ok")
    )
    return 1 if failed else 0
