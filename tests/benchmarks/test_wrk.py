"""Tests of the wrk-driven HTTP workloads (benchmarks/workloads/http.py) and what they
added to the harness: wrk's report parsed from a captured run, the workloads
registered with their p99 row, their own CPU placement and ``--duration``, the p99 row
read from the same samples as the requests/s row, and a missing wrk reported as a
failure. None of them needs wrk or looks at how fast anything is.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from benchmarks import cli, registry, report, runner
from benchmarks.registry import BY_NAME, CPU_PER_REQUEST, P99, Workload
from benchmarks.results import FAILED, OK, Sample, summarize
from benchmarks.workloads import http
from benchmarks.workloads.netio import parse_wrk

# wrk 4.1.0 -t1 -c50 -d2s --latency against the aiohttp server on asyncio, on loopback.
WRK_LATENCY_OUTPUT = """\
Running 2s test @ http://127.0.0.1:33887/
  1 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     3.44ms    2.59ms  17.45ms   81.63%
    Req/Sec    15.79k     7.62k   29.70k    80.00%
  Latency Distribution
     50%    2.16ms
     75%    4.72ms
     90%    7.15ms
     99%   12.85ms
  31412 requests in 2.00s, 4.97MB read
Requests/sec:  15691.82
Transfer/sec:      2.48MB
"""
WRK_NAMES = ("http_wrk_protocol", "http_wrk_aiohttp")


def test_wrk_latency_distribution_is_parsed_in_seconds() -> None:
    latency = http.parse_wrk_latency(WRK_LATENCY_OUTPUT)
    assert latency == pytest.approx({50.0: 2.16e-3, 75.0: 4.72e-3, 90.0: 7.15e-3, 99.0: 12.85e-3})
    assert parse_wrk(WRK_LATENCY_OUTPUT) == (31412, 2.00)


def test_wrk_latency_units() -> None:
    output = WRK_LATENCY_OUTPUT.replace("2.16ms", "812.00us").replace("12.85ms", "1.02s")
    latency = http.parse_wrk_latency(output)
    assert latency[50.0] == pytest.approx(812e-6)
    assert latency[99.0] == pytest.approx(1.02)


def test_wrk_output_without_latency_or_p99_is_an_error() -> None:
    without = "\n".join(line for line in WRK_LATENCY_OUTPUT.splitlines() if "%  " not in line)
    with pytest.raises(RuntimeError, match="no 99% line"):
        http.parse_wrk_latency(without)
    with pytest.raises(RuntimeError, match="no latency distribution"):
        http.parse_wrk_latency(WRK_LATENCY_OUTPUT.replace("Latency Distribution", ""))


def test_wrk_command_is_one_thread_keepalive_with_latency() -> None:
    command = http.wrk_command("/usr/bin/wrk", "127.0.0.1:8080", 50, 3)
    assert command == ["/usr/bin/wrk", "-t1", "-c50", "-d3s", "--latency", "http://127.0.0.1:8080/"]


def test_wrk_workloads_are_registered() -> None:
    for name in WRK_NAMES:
        workload = BY_NAME[name]
        assert workload.target == "benchmarks.workloads.http:wrk_http"
        assert workload.params["server"] in http.SERVERS
        assert workload.params["connections"] == 50
        assert (workload.unit, workload.metrics, workload.n_is_seconds, workload.pin) == (
            "req/s",
            (P99, CPU_PER_REQUEST),
            True,
            "split",
        )
    assert [w.name for w in registry.select(["http_wrk_*"])] == list(WRK_NAMES)


def test_echo_has_a_row_per_message_size() -> None:
    series = registry.select(["echo_tcp_protocol_*k_x1"])
    assert [w.params["size"] for w in series] == [1024, 10 * 1024, 16 * 1024, 100 * 1024, 1024 * 1024]
    for workload in series:
        assert workload.params == {"family": "tcp", "api": "protocol", "size": workload.params["size"], "clients": 1}


def _wrk_sample(loop: str, rep: int, rate: float, p99: float | None) -> Sample:
    details = {} if p99 is None else {"p99_ms": p99, "cpu_us_per_req": 20.0}
    return Sample("http_wrk_protocol", loop, rep, value=rate, details=details)


def test_the_p99_row_reads_the_same_samples() -> None:
    workload = BY_NAME["http_wrk_protocol"]
    samples = [
        _wrk_sample("looplet", 0, 30_000.0, 10.0),
        _wrk_sample("looplet", 1, 32_000.0, 14.0),
        _wrk_sample("asyncio", 0, 20_000.0, 20.0),
        _wrk_sample("asyncio", 1, 24_000.0, 22.0),
    ]
    result = summarize([workload], ["looplet", "asyncio"], samples, skipped={})
    names = ["http_wrk_protocol", "http_wrk_protocol_p99", "http_wrk_protocol_cpu"]
    assert [w.name for w in result.workloads] == names
    p99 = result.cell("http_wrk_protocol_p99", "looplet")
    assert (p99.status, p99.median) == (OK, 12.0)
    table = report.format_table(result)
    row = next(line for line in table.splitlines() if line.startswith("| http_wrk_protocol_p99 "))
    assert [c.strip() for c in row.strip("|").split("|")] == [
        "http_wrk_protocol_p99",
        "ms",
        "12 ±17%",
        "21 ±5%",
        "0.57x",
    ]
    assert "http_wrk_protocol: always --pin split" in table
    (data,) = [w for w in report.to_json(result)["workloads"] if w["name"] == "http_wrk_protocol_p99"]
    assert data["metric_of"] == "http_wrk_protocol"
    assert data["higher_is_better"] is False
    assert data["results"]["asyncio"]["samples"] == [20.0, 22.0]


def test_a_failed_measurement_fails_its_p99_row_and_is_listed_once() -> None:
    workload = BY_NAME["http_wrk_protocol"]
    samples = [
        Sample("http_wrk_protocol", "looplet", 0, error=http.WRK_MISSING),
        _wrk_sample("asyncio", 0, 20_000.0, None),  # ok, but no p99 in its details
    ]
    result = summarize([workload], ["looplet", "asyncio"], samples, skipped={})
    assert result.cell("http_wrk_protocol_p99", "looplet").status == FAILED
    assert result.cell("http_wrk_protocol", "asyncio").status == OK
    assert result.failures() == [
        ("http_wrk_protocol", "looplet", http.WRK_MISSING),
        ("http_wrk_protocol_p99", "asyncio", "the measurement reported no 'p99_ms'"),
        ("http_wrk_protocol_cpu", "asyncio", "the measurement reported no 'cpu_us_per_req'"),
    ]


def test_a_workload_placement_overrides_pin(tmp_path: Path) -> None:
    workload = BY_NAME["http_wrk_aiohttp"]
    echo = BY_NAME["echo_tcp_protocol_1k_x1"]
    assert runner.placement(echo, "shared") == "shared"
    cpus = sorted(os.sched_getaffinity(0))
    expected = "split" if len(cpus) > 1 else "shared"
    assert runner.placement(workload, "shared") == expected
    command = runner.worker_command(workload, "asyncio", quick=True, out=tmp_path / "r.json", timeout=5, pin="none")
    worker_cpus, client_cpus = runner.pinning(expected) or ("", "")
    assert command[command.index("--cpus") + 1] == worker_cpus
    assert command[command.index("--client-cpus") + 1] == client_cpus


def test_duration_sets_n_of_the_timed_workloads_only() -> None:
    seen: dict[str, tuple[int, int]] = {}

    def measure(workload: Workload, loop: str, repetition: int) -> Sample:
        seen[workload.name] = (workload.n, workload.quick_n)
        return Sample(workload.name, loop, repetition, value=1.0, details={"p99_ms": 1.0, "cpu_us_per_req": 1.0})

    chosen = [BY_NAME["http_wrk_protocol"], BY_NAME["queue"]]
    argv = ["--loops", "asyncio", "--repeat", "1", "--duration", "7"]
    status = cli.main(argv, workloads=chosen, measure=measure, out=io.StringIO(), log=io.StringIO())
    assert status == 0
    assert seen == {"http_wrk_protocol": (7, 7), "queue": (BY_NAME["queue"].n, BY_NAME["queue"].quick_n)}


def test_without_wrk_the_workload_fails_and_says_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # the worker is started by absolute path
    out, log = io.StringIO(), io.StringIO()
    argv = ["--quick", "--loops", "asyncio", "--workloads", "http_wrk_protocol"]
    assert cli.main(argv, out=out, log=log) == cli.EXIT_FAILED
    assert f"- http_wrk_protocol on asyncio: RuntimeError: {http.WRK_MISSING}" in out.getvalue()
    assert "_p99 on" not in out.getvalue() and "_cpu on" not in out.getvalue()  # one failure, listed once
