"""Unit tests of the downstream runner (downstream/), fast enough for every CI run.

Role: prove the pieces that make `python -m downstream`'s verdict trustworthy without
installing any downstream project: the plugin, in a real pytest process, records each
test's outcome and the loop its coroutine ran on, swaps the loop only when asked, and
deselects by parameter id; a test missing or skipped on looplet counts as a regression;
the swap check refuses a run on the wrong loop or from the wrong place; the expectation
file demands a reason; every project is pinned.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from downstream import expected, plugin, results
from downstream.projects import PROJECTS, by_name

REPO = Path(__file__).resolve().parents[2]


# -- the plugin, in a pytest process of its own ------------------------------------------

TEST_FILE = """
import asyncio
import pytest

@pytest.mark.asyncio
async def test_async():
    await asyncio.sleep(0)

def test_sync_runs_asyncio_run():
    async def main():
        return type(asyncio.get_running_loop()).__module__
    assert asyncio.run(main())

def test_fails():
    assert False, "boom"

def test_skipped():
    pytest.skip("not here")

@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_param(backend):
    pass
"""


def _run_plugin(tmp_path: Path, loop: str) -> list[dict[str, object]]:
    (tmp_path / "test_sample.py").write_text(TEST_FILE, encoding="utf-8")
    (tmp_path / "pytest.ini").write_text("[pytest]\nasyncio_default_fixture_loop_scope = function\n", encoding="utf-8")
    out = tmp_path / f"{loop}.jsonl"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_ADDOPTS", "PYTHONPATH")}
    # The repository root makes downstream importable, as the runner's .pth file does.
    env.update(
        PYTHONPATH=str(REPO),
        DOWNSTREAM_LOOP=loop,
        DOWNSTREAM_RESULTS=str(out),
        DOWNSTREAM_MODULE="json",
        DOWNSTREAM_DESELECT="trio",
    )
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "downstream.plugin", "-p", "no:cacheprovider", "-q", "test_sample.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr  # test_fails fails
    return [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]


@pytest.mark.parametrize("loop", ["asyncio", "looplet"])
def test_plugin_records_outcomes_and_the_loop(tmp_path: Path, loop: str) -> None:
    records = _run_plugin(tmp_path, loop)
    assert records[0]["kind"] == "start" and records[0]["loop"] == loop
    assert records[0]["module_origin"] is not None
    assert (records[0]["looplet_file"] is not None) == (loop == "looplet")
    assert records[-1]["kind"] == "done" and records[-1]["exitstatus"] == 1
    tests = {str(r["nodeid"]).split("::")[1]: r for r in records if r["kind"] == "test"}
    # The trio-parametrized test was deselected; the rest each have one record.
    assert set(tests) == {
        "test_async",
        "test_sync_runs_asyncio_run",
        "test_fails",
        "test_skipped",
        "test_param[asyncio]",
    }
    assert tests["test_fails"]["outcome"] == "failed"
    assert "boom" in str(tests["test_fails"]["message"])
    assert tests["test_skipped"]["outcome"] == "skipped"
    assert tests["test_sync_runs_asyncio_run"]["outcome"] == "passed"
    # The loop is seen inside the coroutine test only, and it is the loop asked for.
    seen = str(tests["test_async"]["loop"])
    assert results.is_looplet_loop(seen) if loop == "looplet" else results.is_asyncio_loop(seen)
    assert tests["test_sync_runs_asyncio_run"]["loop"] is None


def test_anyio_backend_gets_loopets_factory() -> None:
    def factory() -> None:
        raise AssertionError("not called")

    assert plugin._with_looplet_factory("asyncio", factory) == ("asyncio", {"loop_factory": factory})
    assert plugin._with_looplet_factory(("asyncio", {"debug": True}), factory) == (
        "asyncio",
        {"debug": True, "loop_factory": factory},
    )
    own = ("asyncio", {"loop_factory": print})
    assert plugin._with_looplet_factory(own, factory) is own
    assert plugin._with_looplet_factory("trio", factory) == "trio"


# -- comparing the runs ------------------------------------------------------------------


def _run(loop: str, **outcomes: str) -> results.RunResult:
    run = results.RunResult(loop=loop)
    for name, outcome in outcomes.items():
        run.tests[name] = results.TestResult(name, outcome, "", 0.0, None)
    return run


def test_regressions_count_missing_and_skipped_tests() -> None:
    on_asyncio = _run("asyncio", a="passed", b="passed", c="passed", d="failed", e="passed")
    on_looplet = _run("looplet", a="passed", b="failed", c="skipped", d="failed")
    assert results.regressions(on_asyncio, on_looplet) == ["b", "c", "e"]


def test_swap_problems(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    module = venv / "lib" / "mod.py"
    run = _run("looplet", a="passed")
    run.start = {"module": "mod", "module_origin": str(module), "looplet_file": str(REPO / "looplet" / "__init__.py")}
    assert results.swap_problems(run, str(venv), REPO / "looplet") == [
        "no test recorded the loop it ran on: the swap is unverified"
    ]
    run.tests["a"].loop = "looplet.loop.EventLoop"
    assert results.swap_problems(run, str(venv), REPO / "looplet") == []
    run.tests["b"] = results.TestResult("b", "passed", "", 0.0, "asyncio.unix_events._UnixSelectorEventLoop")
    (problem,) = results.swap_problems(run, str(venv), REPO / "looplet")
    assert "ran on a loop other than looplet's" in problem
    run.loop = "asyncio"
    (problem,) = results.swap_problems(run, str(venv), REPO / "looplet")
    assert "ran on a loop other than asyncio's" in problem
    run.start["module_origin"] = str(tmp_path / "sdist" / "mod.py")
    assert any("not from the venv" in p for p in results.swap_problems(run, str(venv), REPO / "looplet"))
    assert results.swap_problems(results.RunResult("asyncio"), str(venv), REPO / "looplet") == [
        "the run wrote no start record (pytest did not load downstream.plugin?)"
    ]


def test_read_run_ignores_a_cut_last_line(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text(
        json.dumps({"kind": "start", "loop": "asyncio"})
        + "\n"
        + json.dumps({"kind": "test", "nodeid": "t::a", "outcome": "passed", "loop": None})
        + '\n{"kind": "test", "nodeid": "t::b", "outc',
        encoding="utf-8",
    )
    run = results.read_run(path, "asyncio")
    assert list(run.tests) == ["t::a"] and run.exitstatus is None


# -- the expectation file and the projects -----------------------------------------------


def test_expectations_need_a_reason_and_a_known_project() -> None:
    (entry,) = expected.parse("# comment\n\nanyio tests/x.py::t[a b]  # why it is so\n", {"anyio"})
    assert (entry.project, entry.nodeid, entry.reason, entry.line) == ("anyio", "tests/x.py::t[a b]", "why it is so", 3)
    for bad in ("anyio tests/x.py::t", "anyio tests/x.py::t  # ", "nope tests/x.py::t  # why", "anyio  # why"):
        with pytest.raises(ValueError):
            expected.parse(bad, {"anyio"})
    with pytest.raises(ValueError, match="twice"):
        expected.parse("anyio t  # a\nanyio t  # b\n", {"anyio"})


def test_the_expectation_file_parses() -> None:
    entries = expected.load({p.name for p in PROJECTS})
    assert all(e.reason for e in entries)


def test_every_project_is_pinned() -> None:
    assert len(PROJECTS) >= 3
    for project in PROJECTS:
        assert re.fullmatch(r"[0-9a-f]{64}", project.sdist_sha256), project.name
        lock = project.requirements.read_text(encoding="utf-8")
        pins = [line for line in lock.splitlines() if line and not line.startswith("#")]
        assert all(re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[^=\s]+", line) for line in pins), project.name
        assert f"{project.name}=={project.version}" in pins, project.name
        assert project.selection


def test_by_name() -> None:
    assert [p.name for p in by_name("")] == [p.name for p in PROJECTS]
    assert [p.name for p in by_name(PROJECTS[-1].name)] == [PROJECTS[-1].name]
    with pytest.raises(KeyError):
        by_name("nonesuch")
