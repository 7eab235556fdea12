"""Tests of the per-message system call counter (benchmarks/syscalls.py): strace's
summary parsed from a captured run, the n/2n arithmetic, the table, and a failed run
shown as a failure. The traced runs are replaced by made-up counts: nothing here needs
strace or depends on timing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import syscalls
from benchmarks.registry import Workload
from benchmarks.syscalls import Counts

REPO = Path(__file__).resolve().parents[2]

# `strace -f -c -b execve` of one worker running 100 echo round trips on looplet (cut
# short: the table's middle rows, with the errors cell empty on most of them).
STRACE_SUMMARY = """\
% time     seconds  usecs/call     calls    errors syscall
------ ----------- ----------- --------- --------- ----------------
 39.68    0.019265         141       136         1 epoll_wait
 39.10    0.018986       18986         1           wait4
  5.20    0.002523           1      1453        98 newfstatat
  2.52    0.001226           2       435           read
  1.02    0.000497           3       162           mmap
  0.69    0.000334           2       120           sendto
  0.50    0.000241           1       206       204 ioctl
  0.25    0.000119           0       121           recvfrom
  0.21    0.000104           2        46           brk
  0.14    0.000066           4        16           munmap
  0.03    0.000014           7         2         1 accept4
  0.01    0.000003           1         2           madvise
  0.00    0.000000           0         2           close_range
------ ----------- ----------- --------- --------- ----------------
100.00    0.048555          11      4107       383 total
"""


def test_strace_summary_is_parsed_by_column() -> None:
    calls, errors = syscalls.parse_strace_summary(STRACE_SUMMARY)
    assert calls["epoll_wait"] == 136 and errors["epoll_wait"] == 1
    assert calls["recvfrom"] == 121 and errors["recvfrom"] == 0
    assert calls["ioctl"] == 206 and errors["ioctl"] == 204
    assert calls["close_range"] == 2
    assert "total" not in calls
    assert len(calls) == 13


def test_a_total_row_without_usecs_per_call_is_still_read() -> None:
    # Older strace leaves the usecs/call cell of the total row empty.
    summary = STRACE_SUMMARY.replace("100.00    0.048555          11", "100.00    0.048555            ")
    assert syscalls.parse_strace_summary(summary)[0]["recvfrom"] == 121


def test_anything_but_a_summary_is_an_error() -> None:
    with pytest.raises(ValueError, match="not a strace -c summary"):
        syscalls.parse_strace_summary("strace: exec: No such file or directory\n")
    header_and_rule = "\n".join(STRACE_SUMMARY.splitlines()[:2])
    with pytest.raises(ValueError, match="no system call"):
        syscalls.parse_strace_summary(header_and_rule)


def test_per_message_is_the_difference_of_n_and_2n() -> None:
    small = Counts({"recvfrom": 1100, "mmap": 400}, {"recvfrom": 10}, 5000)
    big = Counts({"recvfrom": 2100, "mmap": 400, "madvise": 500}, {"recvfrom": 510}, 6000)
    assert syscalls.per_message(small, big, 1000) == {
        "recvfrom": (1.0, 0.5),
        "mmap": (0.0, 0.0),
        "madvise": (0.5, 0.0),
    }
    with pytest.raises(ValueError):
        syscalls.per_message(small, big, 0)


def fake_trace(loop: str, workload: Workload, n: int, pin: str, strace: str = "strace") -> Counts:
    """What a traced run of ``n`` messages would count: start-up plus per-message costs."""
    if loop == "broken":
        raise RuntimeError("worker reported failed: boom")
    return Counts(
        {"recvfrom": 300 + 2 * n, "sendto": 50 + n, "epoll_wait": 90 + n, "mmap": 700, "futex": 13},
        {"recvfrom": 3 + n},
        4000 + 3 * n,
    )


def test_the_table_has_a_row_per_system_call_and_a_column_per_loop(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(syscalls, "trace", fake_trace)
    monkeypatch.setattr(syscalls.shutil, "which", lambda name: f"/usr/bin/{name}")
    status = syscalls.main(["--loops", "asyncio,broken", "--workloads", "echo_tcp_protocol_1k_x1", "--n", "100"])
    assert status == 1  # the broken loop's failure is the run's
    out = capsys.readouterr().out
    assert out.startswith("echo_tcp_protocol_1k_x1: the server's system calls per message (runs of 100 and 200")
    rows = {
        cells[0]: cells[1:]
        for line in out.splitlines()
        if line.startswith("| ") and not line.startswith("| -")
        for cells in [[c.strip() for c in line.strip("|").split("|")]]
    }
    assert rows["per message"] == ["asyncio", "broken"]
    assert rows["recvfrom"] == ["2.00 (1.00 failed)", "FAILED"]
    assert rows["sendto"] == ["1.00", "FAILED"]
    assert rows["mmap"] == ["0.00", "FAILED"]  # always shown, even when flat
    assert rows["total"] == ["4.00 (1.00 failed)", "FAILED"]
    assert rows["minor faults"] == ["3.00", "FAILED"]
    assert "futex" not in rows  # start-up only: not a per-message row
    assert list(rows)[1] == "recvfrom"  # the busiest first


def test_a_workload_that_runs_for_a_time_is_refused() -> None:
    with pytest.raises(SystemExit):
        syscalls.main(["--workloads", "http_wrk_protocol"])


def test_the_worker_reports_its_page_faults() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.worker", "--loop", "asyncio", "--workload", "idle_tick", "--quick"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result = json.loads(proc.stdout)
    assert result["status"] == "ok"
    assert result["rusage"]["minflt"] > 0
    assert result["rusage"]["majflt"] >= 0
