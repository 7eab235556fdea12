"""Unit tests of the compat runner (compat/), fast enough for every CI run.

Role: prove the pieces that make compat's numbers trustworthy: a real worker
run of a small CPython module reports per-test outcomes and that the loop
under test ran; the injection check refuses a loop module that hands out
stock asyncio loops; canonical ids make stock and loop-under-test runs
comparable; expectation files are strict in both directions; and the tier
table covers every installed test module.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from compat import expected, results, score, supervisor, tiers, variants
from compat.worker import short_id

REPO = Path(__file__).resolve().parents[2]


def _worker(
    tmp_path: Path, loop: str, module: str, extra_path: Path | None = None
) -> tuple[int, list[dict[str, Any]], str]:
    out = tmp_path / "out.jsonl"
    env = supervisor._worker_env()
    if extra_path is not None:
        env["PYTHONPATH"] = f"{extra_path}:{env['PYTHONPATH']}"
    proc = subprocess.run(
        [sys.executable, "-m", "compat.worker", "--loop", loop, "--module", module, "--out", str(out)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    events = [json.loads(line) for line in out.read_text().splitlines()]
    return proc.returncode, events, proc.stderr


def test_worker_runs_module_against_asyncio(tmp_path: Path) -> None:
    code, events, _ = _worker(tmp_path, "asyncio", "test_context")
    assert code == 0
    kinds = [event["event"] for event in events]
    assert kinds[0] == "injected" and kinds[-1] == "done"
    header = events[0]
    assert header["structure"] == variants.STRUCTURE_STOCK
    assert header["check"]["running-loop hook"] == "_set_running_loop"
    found = [event for event in events if event["event"] == "result"]
    assert found, "no test results streamed"
    for event in found:
        assert event["outcome"] == results.PASSED
        assert event["exercised"] == results.EXERCISED_LUT
        assert event["loops"] == ["asyncio.unix_events._UnixSelectorEventLoop"]
    # Every result is preceded by its start line (the supervisor relies on it).
    starts = [event["id"] for event in events if event["event"] == "start"]
    assert starts == [event["id"] for event in found]


def test_supervisor_builds_module_result(tmp_path: Path) -> None:
    done, header = supervisor.run_modules(
        sys.executable,
        "asyncio",
        ["test_context"],
        jobs=1,
        limits=supervisor.Limits(module_timeout=120, test_timeout=60),
        workdir=tmp_path,
    )
    module = done["test_context"]
    assert module.status == results.COMPLETED
    assert module.tier == tiers.BEHAVIOURAL
    assert module.count()["passed"] == module.count()["run"] > 0
    assert header["loop"] == "asyncio"


STOCK_LOOP_MODULE = """
import asyncio

def new_event_loop():
    return asyncio.SelectorEventLoop()
"""


def test_injection_check_rejects_stock_loop(tmp_path: Path) -> None:
    package = tmp_path / "pkgs"
    package.mkdir()
    (package / "fakeloop.py").write_text(textwrap.dedent(STOCK_LOOP_MODULE))
    code, events, stderr = _worker(tmp_path, "fakeloop", "test_context", package)
    assert code == 3
    assert [event["event"] for event in events] == ["injection-failed"]
    assert "stock asyncio loop" in events[0]["detail"]
    assert "INJECTION CHECK FAILED" in stderr


SUBCLASS_LOOP_MODULE = """
import asyncio

class Loop(asyncio.SelectorEventLoop):
    pass

def new_event_loop():
    return Loop()
"""


def test_injection_for_foreign_loop_builds_loop_under_test_class(tmp_path: Path) -> None:
    package = tmp_path / "pkgs"
    package.mkdir()
    (package / "subloop.py").write_text(textwrap.dedent(SUBCLASS_LOOP_MODULE))
    code, events, _ = _worker(tmp_path, "subloop", "test_buffered_proto", package)
    assert code == 0
    header, plan = events[0], events[1]
    assert header["loop_type"] == "subloop.Loop"
    assert header["structure"] == variants.STRUCTURE_LOOP_UNDER_TEST
    assert plan["added"] == "LoopUnderTestBufferedProtocolTests"
    assert "BufferedProtocolSelectorTests" in plan["dropped"]
    assert plan["tests"] == [
        "test_buffered_proto.LoopUnderTestBufferedProtocolTests.test_buffered_proto_create_connection"
    ]
    result = next(event for event in events if event["event"] == "result")
    assert result["outcome"] == results.PASSED
    assert result["exercised"] == results.EXERCISED_LUT
    assert result["loops"] == ["subloop.Loop"]


def test_short_id() -> None:
    assert short_id("test.test_asyncio.test_x.Cls.test_y") == "test_x.Cls.test_y"
    assert short_id("setUpClass (test.test_asyncio.test_x.Cls)") == "test_x.Cls.setUpClass"


def test_canonical_id_maps_reference_variant_only() -> None:
    refs = {"test_events": "EPollEventLoopTests"}
    stock = variants.STRUCTURE_STOCK
    assert (
        variants.canonical_id("test_events.EPollEventLoopTests.test_a", stock, refs)
        == "test_events.LoopUnderTestEventLoopTests.test_a"
    )
    assert variants.canonical_id("test_events.PollEventLoopTests.test_a", stock, refs) is None
    assert variants.canonical_id("test_events.HandleTests.test_a", stock, refs) == "test_events.HandleTests.test_a"
    lut = variants.STRUCTURE_LOOP_UNDER_TEST
    assert (
        variants.canonical_id("test_events.PollEventLoopTests.test_a", lut, refs)
        == "test_events.PollEventLoopTests.test_a"
    )


def test_tier_table_covers_installed_modules() -> None:
    installed = tiers.installed_modules()
    assert "test_tasks" in installed
    unknown = [name for name in installed if name not in tiers.TIER_TABLE]
    assert unknown == [], f"classify these in compat/tiers.py: {unknown}"
    for name, entry in tiers.TIER_TABLE.items():
        assert entry.tier in tiers.TIERS, name
        assert entry.reason and "\n" not in entry.reason, name


def test_unknown_module_is_implementation_with_warning() -> None:
    with pytest.warns(UserWarning, match="test_brand_new"):
        entry = tiers.classify("test_brand_new")
    assert entry.tier == tiers.IMPLEMENTATION


def test_variant_modules_are_classified() -> None:
    for module in variants.VARIANTS:
        assert module in tiers.TIER_TABLE


# --- expectation files and scoring on synthetic results -------------------


def _run(
    loop: str,
    outcomes: dict[str, str],
    *,
    structure: str = variants.STRUCTURE_LOOP_UNDER_TEST,
    status: str = results.COMPLETED,
) -> results.RunResult:
    run = results.RunResult(python="3.12.1", loop=loop, structure=structure)
    for test_id, outcome in outcomes.items():
        name = test_id.split(".")[0]
        module = run.modules.setdefault(
            name, results.ModuleResult(name=name, tier=tiers.classify(name).tier, status=status)
        )
        module.tests[test_id] = results.TestRecord(outcome=outcome, detail="Traceback...\nValueError: boom")
    return run


A, B, C = "test_tasks.T.test_a", "test_tasks.T.test_b", "test_tasks.T.test_c"


def test_check_passes_when_results_match() -> None:
    run = _run("looplet", {A: "passed", B: "failed", C: "skipped"})
    report = expected.check(run, expected.Expectations("looplet", {B: "known"}), set())
    assert report.ok
    assert report.still_failing == 1


def test_check_fails_on_new_failure() -> None:
    run = _run("looplet", {A: "error", B: "failed"})
    report = expected.check(run, expected.Expectations("looplet", {B: "known"}), set())
    assert not report.ok
    assert list(report.new_failures) == [A]
    assert "ValueError: boom" in report.new_failures[A]


def test_check_fails_on_unexpected_pass() -> None:
    run = _run("looplet", {A: "passed", B: "passed"})
    report = expected.check(run, expected.Expectations("looplet", {B: "known"}), set())
    assert not report.ok
    assert report.unexpected_passes == [B]
    assert any("UNEXPECTED PASSES" in line for line in report.lines())


def test_check_accepts_either_outcome_of_a_racy_entry() -> None:
    racy = expected.Expectations("looplet", {B: "race: returns early when connection_lost ran first"})
    passed = expected.check(_run("looplet", {A: "passed", B: "passed"}), racy, set())
    assert passed.ok and passed.racy_passes == [B] and not passed.unexpected_passes
    assert any("race:" in line and "passed this time" in line for line in passed.lines())
    failed = expected.check(_run("looplet", {A: "passed", B: "timeout"}), racy, set())
    assert failed.ok and failed.still_failing == 1 and not failed.racy_passes


def test_check_fails_on_stale_entry_and_incomplete_module() -> None:
    run = _run("looplet", {A: "passed"})
    stale = expected.check(run, expected.Expectations("looplet", {C: "gone"}), set())
    assert stale.stale == [C] and not stale.ok
    hung = _run("looplet", {A: "timeout"}, status=results.MODULE_TIMEOUT)
    report = expected.check(hung, expected.Expectations("looplet", {A: "hangs"}), set())
    assert "test_tasks" in report.incomplete and not report.ok


def test_timeouts_and_crashes_count_as_failures() -> None:
    run = _run("looplet", {A: "timeout", B: "crash", C: "unexpected-success"})
    report = expected.check(run, expected.Expectations("looplet"), set())
    assert sorted(report.new_failures) == [A, B, C]


def test_environment_failures_come_from_the_baseline() -> None:
    base = _run("asyncio", {A: "passed", B: "error"}, structure=variants.STRUCTURE_STOCK)
    run = _run("looplet", {A: "failed", B: "error"})
    env = score.environment_failures(run, base)
    assert env == {B}
    report = expected.check(run, expected.Expectations("looplet"), env)
    assert list(report.new_failures) == [A]
    assert report.environment == [B]


def test_update_keeps_reasons_and_marks_new_entries() -> None:
    run = _run("looplet", {A: "failed", B: "failed", C: "passed"})
    other = "test_locks.L.test_x"
    old = expected.Expectations("looplet", {B: "needs transports", C: "was broken", other: "kept"})
    new = expected.update(run, old, set())
    assert new.entries[B] == "needs transports"
    assert new.entries[A].startswith(expected.PLACEHOLDER)
    assert "ValueError: boom" in new.entries[A]
    assert C not in new.entries  # passes now
    assert new.entries[other] == "kept"  # module not run: untouched
    text = expected.render(new, "3.12")
    again = expected.parse(text)
    assert again.entries == new.entries and again.loop == "looplet"


def test_parse_rejects_entries_without_reason() -> None:
    with pytest.raises(ValueError, match="reason"):
        expected.parse("test_tasks.T.test_a\n")


def test_score_compares_canonical_tests() -> None:
    base = results.RunResult(python="3.12.1", loop="asyncio", structure=variants.STRUCTURE_STOCK)
    module = results.ModuleResult(name="test_events", tier=tiers.BEHAVIOURAL, reference="EPollEventLoopTests")
    for cls in ("EPollEventLoopTests", "PollEventLoopTests"):
        for test in ("test_a", "test_b"):
            module.tests[f"test_events.{cls}.{test}"] = results.TestRecord("passed")
    base.modules["test_events"] = module
    run = _run(
        "looplet",
        {
            "test_events.LoopUnderTestEventLoopTests.test_a": "passed",
            "test_events.LoopUnderTestEventLoopTests.test_b": "failed",
        },
    )
    result = score.score(run, base, tiers.BEHAVIOURAL)
    assert (result.loop_passed, result.baseline_passed) == (1, 2)
    assert score.score(base, base, tiers.BEHAVIOURAL).ratio == 1.0


def test_results_json_round_trip(tmp_path: Path) -> None:
    run = _run("looplet", {A: "passed", B: "timeout"})
    path = tmp_path / "r.json"
    results.save(run, path)
    again = results.load(path)
    assert again.modules["test_tasks"].tests[B].outcome == "timeout"
    assert again.loop == "looplet"


# --- hangs and crashes cost one test, not the module ------------------------

HANGING_MODULE = """
import os
import time
import unittest


class T(unittest.TestCase):
    def test_1_passes(self):
        pass

    def test_2_hangs(self):
        time.sleep(600)

    def test_3_passes(self):
        pass

    def test_4_crashes(self):
        os._exit(7)

    def test_5_passes(self):
        pass
"""


def test_supervisor_resumes_after_hang_and_crash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "pkgs" / "fakesuite"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "test_fake.py").write_text(textwrap.dedent(HANGING_MODULE))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "pkgs"))
    done, _ = supervisor.run_modules(
        sys.executable,
        "asyncio",
        ["test_fake"],
        jobs=1,
        limits=supervisor.Limits(module_timeout=60, test_timeout=3),
        workdir=tmp_path / "work",
        package="fakesuite",
    )
    module = done["test_fake"]
    outcomes = {test_id.rsplit(".", 1)[-1]: record.outcome for test_id, record in module.tests.items()}
    assert outcomes == {
        "test_1_passes": "passed",
        "test_2_hangs": "timeout",
        "test_3_passes": "passed",
        "test_4_crashes": "crash",
        "test_5_passes": "passed",
    }
    assert module.status == results.COMPLETED
    assert module.restarts == 2
    hang = module.tests["test_fake.T.test_2_hangs"]
    assert hang.exercised == results.EXERCISED_UNKNOWN
    assert "test_fake.py" in results.summary_line(hang)
    assert "exited with code 7" in module.tests["test_fake.T.test_4_crashes"].detail


def test_worker_restores_sigint_ignored_by_a_background_shell(tmp_path: Path) -> None:
    # `cmd &` from a non-interactive shell starts cmd with SIGINT ignored;
    # test_runners' KeyboardInterrupt tests would then spin until killed.
    out = tmp_path / "out.jsonl"
    proc = subprocess.run(
        [sys.executable, "-m", "compat.worker", "--loop", "asyncio", "--module", "test_runners", "--out", str(out)],
        cwd=tmp_path,
        env=supervisor._worker_env(),
        capture_output=True,
        timeout=60,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    assert proc.returncode == 0
    events = [json.loads(line) for line in out.read_text().splitlines()]
    outcomes = {event["outcome"] for event in events if event["event"] == "result"}
    assert outcomes == {results.PASSED}
