"""Tests of the benchmark harness (benchmarks/): its logic, never its numbers.

Role: prove that what the harness reports can be trusted: medians, spreads and
ratios are computed from the right samples; the plan interleaves loops; a failure is
shown as FAILED, is not retried, and makes the exit status non-zero; a loop that is
not importable is skipped, not a crash; a worker that fails, hangs or runs the wrong
loop is a failed sample; and the real command runs end to end. No test asserts on
how fast anything is.
"""

from __future__ import annotations

import importlib
import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from benchmarks import cli, registry, report, results, runner
from benchmarks.registry import Workload
from benchmarks.results import (
    FAILED,
    OK,
    SKIPPED,
    Cell,
    Sample,
    check_loop_classes,
    ratio,
    ratio_pairs,
    summarize,
)
from benchmarks.workloads.netio import parse_wrk

REPO = Path(__file__).resolve().parents[2]
W1 = Workload("w1", "scheduling", "nowhere:w1", 10, 1)
W2 = Workload("w2", "other", "nowhere:w2", 10, 1, unit="B/task", higher_is_better=False)
FAKE_WORKLOADS = """
import asyncio

from benchmarks.workloads.base import Measurement


async def boom(ctx, n):
    raise RuntimeError("boom from the fake workload")


def wrong_loop(ctx, n):
    async def main():
        ctx.note_loop()

    asyncio.run(main())  # stock asyncio, whatever loop was asked for
    return Measurement(1.0)


def unsupported(ctx, n):
    async def main():
        ctx.note_loop()
        await asyncio.get_running_loop().sendfile(None, None)

    ctx.run(main)
    return Measurement(1.0)


class NoSendfileLoop(asyncio.SelectorEventLoop):
    sendfile = asyncio.AbstractEventLoop.sendfile  # what uvloop does: the abstract default


def new_event_loop():
    return NoSendfileLoop()


def hang(ctx, n):
    import time

    time.sleep(3600)
"""


def fake_measure(
    values: dict[tuple[str, str], float], errors: dict[tuple[str, str], str], calls: list[tuple[int, str, str]]
) -> cli.Measure:
    def measure(workload: Workload, loop: str, repetition: int) -> Sample:
        calls.append((repetition, workload.name, loop))
        key = (workload.name, loop)
        if key in errors:
            return Sample(workload.name, loop, repetition, error=errors[key])
        return Sample(workload.name, loop, repetition, value=values[key] * (1 + repetition))

    return measure


def run_main(argv: list[str], measure: cli.Measure | None, workloads: list[Workload]) -> tuple[int, str, str]:
    out, log = io.StringIO(), io.StringIO()
    status = cli.main(argv, workloads=workloads, measure=measure, out=out, log=log)
    return status, out.getvalue(), log.getvalue()


# -- arithmetic -----------------------------------------------------------------------


def test_cell_median_and_spread() -> None:
    cell = Cell(OK, (3.0, 1.0, 2.0, 10.0, 2.5))
    assert cell.median == 2.5
    assert cell.spread == pytest.approx((10.0 - 1.0) / 2 / 2.5)
    assert Cell(OK, (4.0,)).spread == 0.0


def test_ratio_needs_two_ok_cells() -> None:
    assert ratio(Cell(OK, (3.0,)), Cell(OK, (2.0,))) == 1.5
    assert ratio(Cell(FAILED, (3.0,), "x"), Cell(OK, (2.0,))) is None
    assert ratio(Cell(OK, (3.0,)), Cell(SKIPPED, error="missing")) is None


def test_ratio_pairs_compare_every_loop_with_each_baseline_once() -> None:
    assert ratio_pairs(["looplet", "asyncio", "uvloop"]) == [
        ("looplet", "asyncio"),
        ("uvloop", "asyncio"),
        ("looplet", "uvloop"),
    ]
    assert ratio_pairs(["looplet", "uvloop"]) == [("looplet", "uvloop")]
    assert ratio_pairs(["looplet"]) == []


def test_a_failed_sample_fails_the_cell_whatever_the_others() -> None:
    samples = [
        Sample("w1", "looplet", 0, value=5.0),
        Sample("w1", "looplet", 1, error="RuntimeError: second run broke"),
        Sample("w1", "asyncio", 0, value=4.0),
    ]
    result = summarize([W1], ["looplet", "asyncio"], samples, skipped={})
    assert result.cell("w1", "looplet").status == FAILED
    assert result.cell("w1", "looplet").median is None
    assert result.cell("w1", "asyncio").median == 4.0
    assert result.failures() == [("w1", "looplet", "RuntimeError: second run broke")]
    assert not result.ok


def test_loop_check_accepts_only_the_requested_loops_package() -> None:
    assert check_loop_classes("looplet", ["looplet.loop.EventLoop"]) is None
    assert check_loop_classes("uvloop", ["uvloop.Loop"]) is None
    assert check_loop_classes("asyncio", ["asyncio.unix_events._UnixSelectorEventLoop"]) is None
    assert "not on a looplet loop" in (check_loop_classes("looplet", ["asyncio.unix_events.X"]) or "")
    assert check_loop_classes("looplet", []) == "no event loop ran the workload"


# -- formatting -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [(1_234_567, "1.23M"), (999_600, "1M"), (412.3, "412"), (12_345, "12.3k"), (0.5, "0.5"), (2.5e9, "2.5G")],
)
def test_format_value(value: float, text: str) -> None:
    assert report.format_value(value) == text


def test_table_and_json_show_the_same_results() -> None:
    samples = [
        Sample(w.name, loop, rep, value=v * (rep + 1))
        for w in (W1, W2)
        for loop, v in (("looplet", 300.0), ("asyncio", 200.0))
        for rep in range(3)
    ]
    result = summarize([W1, W2], ["looplet", "asyncio", "uvloop"], samples, {"uvloop": "not importable: no"})
    table = report.format_table(result)
    lines = table.splitlines()
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert header == ["workload", "unit", "looplet", "asyncio", "uvloop", "looplet/asyncio"]
    w1_row = [c.strip() for c in lines[2].strip("|").split("|")]
    assert w1_row == ["w1", "ops/s", "600 ±50%", "400 ±50%", "skipped", "1.50x"]
    assert "skipped: uvloop (not importable: no)" in table
    data = json.loads(json.dumps(report.to_json(result)))
    w1 = data["workloads"][0]
    assert w1["results"]["looplet"]["samples"] == [300.0, 600.0, 900.0]
    assert w1["results"]["looplet"]["median"] == 600.0
    assert w1["results"]["uvloop"]["status"] == SKIPPED
    assert w1["ratios"] == {"looplet/asyncio": 1.5}
    assert data["workloads"][1]["higher_is_better"] is False
    assert data["ok"] is True


def test_summarize_error_keeps_the_first_and_last_lines() -> None:
    error = "RuntimeError: client exited with 1:\nTraceback\n  File x\n  File y\nValueError: short read"
    assert (
        report.summarize_error(error) == "RuntimeError: client exited with 1: | ... | File y | ValueError: short read"
    )


# -- the plan and the command ----------------------------------------------------------


def test_plan_interleaves_loops_within_each_repetition() -> None:
    order = [(rep, w.name, loop) for rep, w, loop in cli.plan([W1, W2], ["A", "B", "C"], 2)]
    assert order == [
        (0, "w1", "A"), (0, "w1", "B"), (0, "w1", "C"), (0, "w2", "A"), (0, "w2", "B"), (0, "w2", "C"),
        (1, "w1", "A"), (1, "w1", "B"), (1, "w1", "C"), (1, "w2", "A"), (1, "w2", "B"), (1, "w2", "C"),
    ]  # fmt: skip


def test_a_failing_workload_is_reported_not_retried_and_fails_the_run(tmp_path: Path) -> None:
    values = {("w1", "asyncio"): 10.0, ("w1", "looplet"): 20.0, ("w2", "asyncio"): 5.0, ("w2", "looplet"): 5.0}
    errors = {("w2", "looplet"): "NotImplementedError: no subprocesses yet"}
    calls: list[tuple[int, str, str]] = []
    json_path = tmp_path / "out.json"
    argv = ["--loops", "looplet,asyncio", "--repeat", "3", "--json", str(json_path)]
    status, out, _ = run_main(argv, fake_measure(values, errors, calls), [W1, W2])
    assert status == cli.EXIT_FAILED
    assert calls.count((0, "w2", "looplet")) == 1
    assert not [c for c in calls if c[1:] == ("w2", "looplet") and c[0] > 0]
    assert len(calls) == 3 * 4 - 2
    row = next(line for line in out.splitlines() if line.startswith("| w2 "))
    assert "FAILED" in row
    assert "- w2 on looplet: NotImplementedError: no subprocesses yet" in out
    data = json.loads(json_path.read_text())
    assert data["ok"] is False
    assert data["failures"] == [
        {"workload": "w2", "loop": "looplet", "error": "NotImplementedError: no subprocesses yet"}
    ]
    assert data["workloads"][0]["results"]["looplet"]["median"] == 40.0  # w1 is unaffected


def test_a_missing_loop_module_is_skipped_not_a_failure() -> None:
    calls: list[tuple[int, str, str]] = []
    values = {("w1", "asyncio"): 1.0}
    status, out, log = run_main(
        ["--loops", "asyncio,no_such_loop_module_xyz", "--workloads", "w1"], fake_measure(values, {}, calls), [W1, W2]
    )
    assert status == 0
    assert {loop for _, _, loop in calls} == {"asyncio"}
    assert "skipped: no_such_loop_module_xyz (not importable" in out
    row = next(line for line in out.splitlines() if line.startswith("| w1 "))
    assert "skipped" in row
    assert "skipping no_such_loop_module_xyz" in log


def test_an_unknown_workload_is_a_usage_error() -> None:
    status, _, log = run_main(["--workloads", "w1,nope"], fake_measure({}, {}, []), [W1])
    assert status == cli.EXIT_USAGE
    assert "'nope'" in log


def test_selection_by_name_area_and_glob() -> None:
    names = [w.name for w in registry.select(["queue", "echo_unix_*_100k_x16", "other"])]
    assert names[0] == "queue"
    assert {"echo_unix_protocol_100k_x16", "echo_unix_streams_100k_x16", "loop_startup"} <= set(names)
    assert len(names) == len(set(names))
    with pytest.raises(ValueError, match="no workload matches"):
        registry.select(["echo_sctp_*"])


def test_every_registered_target_exists() -> None:
    for workload in registry.WORKLOADS:
        module, _, function = workload.target.partition(":")
        assert callable(getattr(importlib.import_module(module), function)), workload.name
        assert workload.area in registry.AREAS
        assert 0 < workload.quick_n <= workload.n


def test_pinning_modes() -> None:
    cpus = sorted(os.sched_getaffinity(0))
    assert runner.pinning("none") is None
    assert runner.pinning("shared") == (str(cpus[-1]), str(cpus[-1]))
    if len(cpus) < 2:
        with pytest.raises(ValueError, match="at least 2 CPUs"):
            runner.pinning("split")
        return
    split = runner.pinning("split")
    assert split is not None
    worker, clients = split
    assert worker == str(cpus[0])
    assert worker not in clients.split(",")


# -- real worker processes ----------------------------------------------------------------


@pytest.fixture
def fake_workloads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / "fake_bench_workloads.py").write_text(textwrap.dedent(FAKE_WORKLOADS))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    return "fake_bench_workloads"


def test_a_raising_workload_is_a_failed_sample(fake_workloads: str) -> None:
    workload = Workload("boom", "other", f"{fake_workloads}:boom", 1, 1)
    sample = runner.measure(workload, "asyncio", 0, quick=True, timeout=60)
    assert not sample.ok
    assert sample.error == "RuntimeError: boom from the fake workload"
    assert "Traceback" in sample.details["traceback"]


def test_a_raising_workload_fails_the_command(fake_workloads: str) -> None:
    boom = Workload("boom", "other", f"{fake_workloads}:boom", 1, 1)
    status, out, log = run_main(["--quick", "--loops", "asyncio"], None, [boom])
    assert status == cli.EXIT_FAILED
    assert "| boom " in out
    assert "FAILED" in out.split("| boom ", 1)[1].splitlines()[0]
    assert "- boom on asyncio: RuntimeError: boom from the fake workload" in out
    assert "[1/1] boom on asyncio: FAILED" in log


def test_an_api_the_loop_lacks_is_unsupported_not_a_failure(fake_workloads: str) -> None:
    workload = Workload("unsupported", "other", f"{fake_workloads}:unsupported", 1, 1)
    sample = runner.measure(workload, fake_workloads, 0, quick=True, timeout=60)
    assert sample.unsupported and not sample.ok
    assert sample.error is not None and sample.error.startswith("NotImplementedError")
    cell = results.summarize_cell([sample])
    assert cell.status == results.UNSUPPORTED  # not FAILED: the run does not fail for it
    assert report.format_cell(cell) == "unsupported"


def test_a_workload_on_the_wrong_loop_is_a_failed_sample(fake_workloads: str) -> None:
    workload = Workload("wrong", "other", f"{fake_workloads}:wrong_loop", 1, 1)
    assert runner.measure(workload, "asyncio", 0, quick=True, timeout=60).ok
    sample = runner.measure(workload, "looplet", 0, quick=True, timeout=60)
    assert sample.error is not None
    assert sample.error.startswith("loop check: ran on asyncio.")


def test_a_hanging_workload_is_a_failed_sample_with_its_stack(fake_workloads: str) -> None:
    workload = Workload("hang", "other", f"{fake_workloads}:hang", 1, 1)
    sample = runner.measure(workload, "asyncio", 0, quick=True, timeout=1)
    assert sample.error is not None
    assert "no result" in sample.error
    assert "in hang" in sample.error  # faulthandler's dump names the function that hung


def test_quick_run_end_to_end() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks",
            "--quick",
            "--loops",
            "asyncio",
            "--workloads",
            "call_soon_chain,loop_startup",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| ")]
    assert [row.split("|")[1].strip() for row in rows[2:]] == ["call_soon_chain", "loop_startup"]
    assert "FAILED" not in proc.stdout


WRK_OUTPUT = """\
Running 1s test @ http://127.0.0.1:42109/
  1 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   312.17us  234.90us   4.21ms   92.53%
    Req/Sec    52.96k    10.04k   70.06k    63.64%
  57871 requests in 1.10s, 4.30MB read
Requests/sec:  52638.23
Transfer/sec:      3.92MB
"""


def test_wrk_output_is_parsed_and_its_errors_fail_the_run() -> None:
    assert parse_wrk(WRK_OUTPUT) == (57871, 1.10)
    with pytest.raises(RuntimeError, match="wrk reported errors"):
        parse_wrk(WRK_OUTPUT + "  Socket errors: connect 0, read 3, write 0, timeout 0\n")
    with pytest.raises(RuntimeError, match="unrecognised"):
        parse_wrk("unable to connect to 127.0.0.1:1 Connection refused")
