"""Tests of the stress run (benchmarks/stress.py, benchmarks/stress_client.py): what it reports, never how fast.

Role: prove that the stress run's report can be trusted. Its arithmetic: latencies are
nearest-rank percentiles, replies are checked byte for byte, every error source (the
client's, the server's checks, the loop's exception handler) adds to a loop's error
count, and any error or failure makes the exit status non-zero. End to end: a quick run
(``--max-requests 200``) on looplet and stock asyncio completes every
request with no error, on the loop asked for, with every background check done; a
server that resets or ignores connections shows up as counted errors of the right kind
in a report that still completes, not as a crash or a hang; and a loop that cannot be
made, dies mid-run, or is not the loop asked for is reported FAILED while the other
loops still run.

The faulty "loops" are stock asyncio loops with a protocol wrapper that misbehaves on
the server side (tests/benchmarks/ tests the harness, so the faults are injected, not
looplet bugs). Each stress run is in subprocesses and bounded by --seconds,
--max-requests and --request-timeout; subprocess.run's timeout only turns a hang of the
run into a failure with its output.
"""

from __future__ import annotations

import io
import json
import os
import platform
import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from benchmarks import stress, stress_client
from benchmarks.registry import Workload
from benchmarks.results import Sample

REPO = Path(__file__).resolve().parents[2]
# A hang guard only: a quick run takes a few seconds per loop.
RUN_TIMEOUT = 150.0

FAKE_LOOPS_INIT = """
import asyncio
import os
import time


class _Faulty(asyncio.Protocol):
    # Wraps the server's protocol; the loop decides what happens to every nth read.

    def __init__(self, inner, loop):
        self.inner = inner
        self.loop = loop

    def connection_made(self, transport):
        self.transport = transport
        self.inner.connection_made(transport)

    def data_received(self, data):
        self.loop.reads += 1
        if self.loop.reads % self.loop.every == 0:
            self.loop.fault(self.transport)
        else:
            self.inner.data_received(data)

    def eof_received(self):
        return self.inner.eof_received()

    def connection_lost(self, exc):
        self.inner.connection_lost(exc)

    def pause_writing(self):
        self.inner.pause_writing()

    def resume_writing(self):
        self.inner.resume_writing()


class FaultyLoop(asyncio.SelectorEventLoop):
    every = 1
    reads = 0

    def fault(self, transport):
        raise NotImplementedError

    async def create_server(self, protocol_factory, *args, **kwargs):
        return await super().create_server(lambda: _Faulty(protocol_factory(), self), *args, **kwargs)


class ResettingLoop(FaultyLoop):
    # Every 10th read: the connection is aborted instead of answered.
    every = 10

    def fault(self, transport):
        transport.abort()


class SilentLoop(FaultyLoop):
    # Every 10th read is dropped: that request is never answered.
    every = 10

    def fault(self, transport):
        pass


class FrozenLoop(FaultyLoop):
    # The first read blocks the loop for good, as a deadlocked loop would.
    every = 1

    def fault(self, transport):
        time.sleep(3600)


class DyingLoop(FaultyLoop):
    # The server process dies mid-run, as a segfaulting loop would: 100 requests need
    # at least 100 reads, so a run of 100 requests always gets here.
    every = 100

    def fault(self, transport):
        os._exit(3)
"""

FAKE_LOOP_MODULES = {
    "resetting": "from fake_stress import ResettingLoop as new_event_loop\n",
    "silent": "from fake_stress import SilentLoop as new_event_loop\n",
    "dying": "from fake_stress import DyingLoop as new_event_loop\n",
    "frozen": "from fake_stress import FrozenLoop as new_event_loop\n",
    "broken": "def new_event_loop():\n    raise RuntimeError('this loop cannot be made')\n",
    # Stock asyncio under another name: the loop check must refuse its numbers.
    "impostor": "from asyncio import new_event_loop\n",
}


@pytest.fixture
def fake_loops(tmp_path: Path) -> dict[str, str]:
    """The environment of a stress run that can import the ``fake_stress.*`` loops."""
    package = tmp_path / "fake_stress"
    package.mkdir()
    (package / "__init__.py").write_text(textwrap.dedent(FAKE_LOOPS_INIT))
    for name, text in FAKE_LOOP_MODULES.items():
        (package / f"{name}.py").write_text(text)
    return {"PYTHONPATH": str(tmp_path)}


def run_stress(argv: list[str], json_path: Path, env: dict[str, str] | None = None) -> tuple[int, str, dict[str, Any]]:
    """``python -m benchmarks.stress ARGV --json PATH``: (exit status, its output, the JSON report)."""
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.stress", *argv, "--json", str(json_path)],
        cwd=REPO,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    assert json_path.exists(), proc.stdout + proc.stderr
    data: dict[str, Any] = json.loads(json_path.read_text())
    return proc.returncode, proc.stdout + proc.stderr, data


# -- the client's arithmetic and checks ------------------------------------------------------


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert stress_client.percentile(values, 50) == 50.0
    assert stress_client.percentile(values, 99) == 99.0
    assert stress_client.percentile(values, 100) == 100.0
    assert stress_client.percentile([7.0], 99) == 7.0
    assert stress_client.percentile([], 50) == 0.0
    summary = stress_client.latency_summary([0.003, 0.001, 0.002])
    assert summary == pytest.approx({"p50": 2.0, "p99": 3.0, "max": 3.0, "mean": 2.0})


def test_echo_payloads_have_the_size_asked_and_name_their_request() -> None:
    for size in stress_client.ECHO_SIZES:
        assert len(stress_client.echo_payload(3, 7, size)) == size
    # A reply meant for another request or connection does not pass the byte check.
    assert stress_client.echo_payload(3, 7, 64) != stress_client.echo_payload(3, 8, 64)
    assert stress_client.echo_payload(3, 7, 64) != stress_client.echo_payload(4, 7, 64)


def test_http_responses_are_parsed_strictly() -> None:
    parse = stress_client.parse_http_response
    response = b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nok /1/23"
    assert parse(response) == b"ok /1/23"
    assert parse(response[:-1]) is None
    assert parse(response[:10]) is None
    with pytest.raises(stress_client.BadReply, match="bytes after the response"):
        parse(response + b"H")
    with pytest.raises(stress_client.BadReply, match="status line"):
        parse(b"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n")
    with pytest.raises(stress_client.BadReply, match="Content-Length"):
        parse(b"HTTP/1.1 200 OK\r\n\r\n")
    assert stress_client.http_body("/1/23") == b"ok /1/23"


def test_the_client_ends_against_a_server_that_never_answers() -> None:
    # The kernel completes the connects and buffers the requests; nothing is ever read
    # or answered. Each request must time out, the next one too (a lone connection
    # whose second request went unwatched once hung the client), and the client must
    # stop at its deadline with its report.
    with socket.create_server(("127.0.0.1", 0), backlog=16) as server:
        port = server.getsockname()[1]
        argv = ["--echo", f"127.0.0.1:{port}", "--http", f"127.0.0.1:{port}", "--echo-conns", "1"]
        argv += ["--http-conns", "0", "--seconds", "1", "--max-requests", "1000", "--request-timeout", "0.1"]
        proc = subprocess.run(
            [sys.executable, "-m", "benchmarks.stress_client", *argv],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
            check=False,
        )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["requests"] == 0
    assert report["error_kinds"]["timeout"] >= 2
    assert report["errors"] == sum(report["error_kinds"].values())
    assert report["stopped_by"] == "time"


# -- the report and the exit status -----------------------------------------------------------


def fake_sample(loop: str, **overrides: Any) -> Sample:
    """A worker's sample as runner.measure returns it, for a clean run unless overridden."""
    client = {
        "requests": 200,
        "started": 200,
        "errors": 0,
        "error_kinds": {},
        "error_samples": [],
        "latency_ms": {"p50": 1.0, "p99": 4.0, "max": 9.0, "mean": 1.5},
        "by_kind": {},
        "connections": 16,
        "seconds": 0.5,
        "stopped_by": "requests",
    }
    server = {"errors": 0, "error_kinds": {}, "error_samples": [], "counters": {"timers_fired": 20, "tasks_run": 51}}
    details: dict[str, Any] = {
        "loop_classes": [f"{loop}.Loop"],
        "loop_version": "1.0",
        "client": client,
        "server": server,
        "peak_rss_bytes": 30 * 2**20,
        "cpu_seconds": 0.25,
        "wall_seconds": 0.5,
    }
    for key, value in overrides.items():
        target = client if key in client else server if key in server else details
        target[key] = value
    return Sample("stress", loop, 0, value=400.0, details=details)


def test_every_error_source_adds_to_a_loops_errors() -> None:
    sample = fake_sample(
        "looplet",
        error_kinds={"reset": 2, "timeout": 1},
        error_samples=["echo[0] request 5: reset: ..."],
        loop_errors=["Exception in callback: RuntimeError('x')"],
    )
    sample.details["server"]["error_kinds"] = {"timers": 1}
    result = stress.loop_result(sample)
    assert result["status"] == stress.ERRORS
    assert result["errors"] == 5
    assert result["error_kinds"] == {"reset": 2, "timeout": 1, "server timers": 1, "exception handler": 1}
    assert "exception handler: Exception in callback: RuntimeError('x')" in result["error_samples"]
    clean = stress.loop_result(fake_sample("asyncio"))
    assert clean["status"] == stress.OK
    assert clean["errors"] == 0
    assert clean["requests_per_second"] == 400.0
    failed = stress.loop_result(Sample("stress", "uvloop", 0, error="loop check: ran on asyncio.X"))
    assert failed["status"] == stress.FAILED
    assert failed["error"] == "loop check: ran on asyncio.X"


def run_main(argv: list[str], samples: dict[str, Sample]) -> tuple[int, str, list[str]]:
    asked: list[str] = []

    def measure(workload: Workload, loop: str) -> Sample:
        asked.append(loop)
        assert workload.target == "benchmarks.stress:serve_mixed"
        return samples[loop]

    out, log = io.StringIO(), io.StringIO()
    status = stress.main(argv, measure=measure, out=out, log=log)
    return status, out.getvalue(), asked


def test_errors_on_one_loop_fail_the_run_and_are_shown(tmp_path: Path) -> None:
    samples = {
        "looplet": fake_sample("looplet", error_kinds={"short_reply": 3}, error_samples=["http[1] request 9: ..."]),
        "asyncio": fake_sample("asyncio"),
    }
    path = tmp_path / "stress.json"
    argv = ["--loops", "looplet,asyncio,no_such_loop_module_xyz", "--seconds", "1", "--json", str(path)]
    status, out, asked = run_main(argv, samples)
    assert status == stress.EXIT_ERRORS
    assert asked == ["looplet", "asyncio"]  # the missing module is skipped, never measured
    table = [line.split("|")[1:-1] for line in out.splitlines() if line.startswith("|")]
    rows = {cells[0].strip(): [c.strip() for c in cells[1:]] for cells in table}
    assert rows[""] == ["looplet", "asyncio", "no_such_loop_module_xyz"]
    assert rows["status"] == ["errors", "ok", "skipped"]
    assert rows["errors"] == ["3", "0", "-"]
    assert rows["latency p99 (ms)"] == ["4", "4", "-"]
    assert "ERRORS on looplet: short_reply 3" in out
    assert "skipped: no_such_loop_module_xyz (not importable" in out
    data = json.loads(path.read_text())
    assert data["ok"] is False
    assert data["loops"] == ["looplet", "asyncio", "no_such_loop_module_xyz"]
    assert data["results"]["looplet"]["errors"] == 3
    assert data["results"]["asyncio"]["latency_ms"]["p50"] == 1.0
    assert data["meta"]["settings"]["seconds"] == 1.0
    assert data["meta"]["command"].startswith("python -m benchmarks.stress --loops")


def test_the_run_passes_only_if_a_loop_ran_and_none_had_errors() -> None:
    status, out, _ = run_main(
        ["--loops", "looplet,asyncio"], {"looplet": fake_sample("looplet"), "asyncio": fake_sample("asyncio")}
    )
    assert status == 0
    assert "ERRORS" not in out
    status, out, asked = run_main(["--loops", "no_such_loop_module_xyz"], {})
    assert status == stress.EXIT_ERRORS
    assert asked == []
    assert "no loop ran" in out
    failed = Sample("stress", "asyncio", 0, error="worker exited with status 3 and no result")
    status, out, _ = run_main(["--loops", "asyncio"], {"asyncio": failed})
    assert status == stress.EXIT_ERRORS
    assert "FAILED: asyncio: worker exited with status 3 and no result" in out


@pytest.mark.parametrize(
    "argv",
    [
        ["--seconds", "0"],
        ["--max-requests", "0"],
        ["--request-timeout", "-1"],
        ["--echo-conns", "0", "--http-conns", "0"],
        ["--reconnect-every", "-1"],
        ["--loops", ","],
    ],
)
def test_bad_arguments_are_usage_errors(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc_info:
        stress.main(argv, measure=lambda workload, loop: pytest.fail("nothing may run"))
    assert exc_info.value.code == stress.EXIT_USAGE
    assert "error:" in capsys.readouterr().err


# -- real runs ----------------------------------------------------------------------------------


def test_a_quick_run_serves_every_request_on_the_loop_asked_for(tmp_path: Path) -> None:
    # Bounded by requests: 200 take a few tens of milliseconds, 30 s is never reached.
    max_requests = 200
    argv = ["--seconds", "30", "--max-requests", str(max_requests), "--loops", "looplet,asyncio"]
    status, output, data = run_stress(argv, tmp_path / "stress.json")
    assert status == 0, output
    assert data["ok"] is True
    assert data["loops"] == ["looplet", "asyncio"]
    assert data["meta"]["loop_versions"]["asyncio"] == platform.python_version()
    expected_class = {"looplet": "looplet.loop.EventLoop", "asyncio": "asyncio.unix_events._UnixSelectorEventLoop"}
    for loop, result in data["results"].items():
        assert result["status"] == "ok", (loop, result)
        assert result["loop_classes"] == [expected_class[loop]]
        assert result["errors"] == 0
        assert result["error_kinds"] == {}
        # Every request started was completed.
        assert result["stopped_by"] == "requests"
        assert result["started"] == result["requests"] == max_requests
        assert result["by_kind"]["echo"]["requests"] + result["by_kind"]["http"]["requests"] == max_requests
        latency = result["latency_ms"]
        assert 0 < latency["p50"] <= latency["p99"] <= latency["max"]
        assert result["peak_rss_bytes"] >= result["rss_before_bytes"] > 0
        assert result["cpu_seconds"] > 0
        server = result["server"]
        # Every background job ran whole rounds, and each round's check held.
        assert server["timer_rounds"] >= 1
        assert server["timers_fired"] == server["timer_rounds"] * stress.TIMERS_PER_ROUND // 10
        assert server["timers_scheduled"] == server["timer_rounds"] * stress.TIMERS_PER_ROUND
        assert server["task_rounds"] >= 1
        assert server["tasks_run"] == server["task_rounds"] * (stress.TASKS_PER_ROUND + 1)
        assert server["threadsafe_rounds"] >= 1
        assert server["threadsafe_callbacks"] == server["threadsafe_rounds"] * stress.THREADSAFE_PER_ROUND
        # The server answered exactly the HTTP requests the client counted.
        assert server["http_requests"] == result["by_kind"]["http"]["requests"]
    assert "| status " in output
    assert "ERRORS" not in output and "FAILED" not in output


@pytest.mark.load
def test_server_faults_are_counted_errors_not_a_crash_or_a_hang(tmp_path: Path, fake_loops: dict[str, str]) -> None:
    # No request cap: the run is bounded by time, and each unanswered request by 0.5 s.
    # Every 10th read misbehaves, so a second of requests meets the fault many times.
    argv = ["--seconds", "1", "--max-requests", "1000000000", "--request-timeout", "0.5"]
    argv += ["--echo-conns", "4", "--http-conns", "4", "--loops", "fake_stress.resetting,fake_stress.silent"]
    status, output, data = run_stress(argv, tmp_path / "stress.json", fake_loops)
    assert status == stress.EXIT_ERRORS, output
    assert data["ok"] is False
    resetting, silent = data["results"]["fake_stress.resetting"], data["results"]["fake_stress.silent"]
    for result in (resetting, silent):
        assert result["status"] == "errors"
        assert result["loop_classes"][0].startswith("fake_stress.")
        assert result["stopped_by"] == "time"
        # The run went on around the faults, and its report is complete.
        assert result["requests"] > 0
        assert result["started"] >= result["requests"]
        assert result["latency_ms"]["max"] > 0
        assert result["error_samples"]
    # An aborted connection reaches the client as a reset or as EOF mid-reply.
    assert resetting["error_kinds"].get("reset", 0) + resetting["error_kinds"].get("short_reply", 0) > 0
    assert silent["error_kinds"].get("timeout", 0) > 0
    assert "ERRORS on fake_stress.resetting" in output
    assert "ERRORS on fake_stress.silent" in output


@pytest.mark.load
def test_a_loop_that_cannot_run_is_reported_failed_and_the_others_still_run(
    tmp_path: Path, fake_loops: dict[str, str]
) -> None:
    loops = "fake_stress.broken,fake_stress.dying,fake_stress.impostor,asyncio"
    # Bounded by requests: 100 take a few tens of milliseconds, 30 s is never reached.
    argv = ["--seconds", "30", "--max-requests", "100", "--request-timeout", "2", "--loops", loops]
    status, output, data = run_stress(argv, tmp_path / "stress.json", fake_loops)
    assert status == stress.EXIT_ERRORS, output
    results = data["results"]
    assert {loop: r["status"] for loop, r in results.items()} == {
        "fake_stress.broken": "failed",
        "fake_stress.dying": "failed",
        "fake_stress.impostor": "failed",
        "asyncio": "ok",
    }
    assert results["fake_stress.broken"]["error"].startswith("RuntimeError: this loop cannot be made")
    assert results["fake_stress.dying"]["error"].startswith("worker exited with status 3 and no result")
    # Its numbers are stock asyncio's, whatever the module is called: refused.
    assert results["fake_stress.impostor"]["error"].startswith("loop check: ran on asyncio.")
    assert results["asyncio"]["requests"] == 100
    assert "FAILED: fake_stress.impostor: loop check" in output


@pytest.mark.load
def test_a_frozen_loop_is_killed_and_reported_with_its_stack(tmp_path: Path, fake_loops: dict[str, str]) -> None:
    # The worker's faulthandler ends it --timeout seconds after the run's bounds
    # (--seconds + --request-timeout), and its stack dump is the error.
    argv = ["--seconds", "0.5", "--request-timeout", "0.5", "--timeout", "3", "--loops", "fake_stress.frozen"]
    status, output, data = run_stress(argv, tmp_path / "stress.json", fake_loops)
    assert status == stress.EXIT_ERRORS, output
    result = data["results"]["fake_stress.frozen"]
    assert result["status"] == "failed"
    assert result["error"].startswith("worker exited with status 1 and no result")
    assert "Timeout" in result["error"]
    assert "in fault" in result["error"]  # where it froze
