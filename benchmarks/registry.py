"""The workloads: name, area, the function that runs it, its sizes and its unit.

Role: the one list the harness plans from and ``--workloads`` selects in. A workload
is identified by its name everywhere (table, JSON, the worker's command line); its
``target`` is the ``module:function`` the worker imports, so the worker needs nothing
else from here.

Invariant owned here: names are unique and stable (the JSON of different runs can be
compared by name), and every normal size is calibrated for a 0.2-1 s measurement on
stock asyncio on the 2-core VM of docs/benchmarks.md (a loop 10x faster measures for
less: the work is fixed, not the time); ``quick_n`` only has to exercise the code path.
The exception is a workload whose ``n`` is seconds (``n_is_seconds``): an external load
generator (wrk) runs for a time, not a count, and ``--duration`` sets it.
"""

from __future__ import annotations

import fnmatch
import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

AREAS: tuple[str, ...] = ("scheduling", "io", "other")
_SCHED = "benchmarks.workloads.scheduling"
_ECHO = "benchmarks.workloads.echo"
_NETIO = "benchmarks.workloads.netio"
_OTHER = "benchmarks.workloads.other"
_MEMORY = "benchmarks.workloads.memory"
_TOOLS = "benchmarks.workloads.tools:with_tool"
_HTTP = "benchmarks.workloads.http"
_SIM = "benchmarks.workloads.sim:echo_cpu"


@dataclass(frozen=True)
class Metric:
    """A second number one measurement reports (in its details), shown as a row of its own.

    The row is named ``<workload>_<suffix>``; its cells are the medians of ``key`` over
    the same measurements as the workload's own row, so the two numbers of a cell
    always come from the same runs.
    """

    key: str
    suffix: str
    unit: str
    higher_is_better: bool = True


@dataclass(frozen=True)
class Workload:
    name: str
    area: str
    #: ``module:function`` run by the worker as ``function(ctx, n, **params)``
    target: str
    #: the fixed amount of work of a normal measurement
    n: int
    #: the amount of work under ``--quick``
    quick_n: int
    unit: str = "ops/s"
    #: memory workloads report bytes, where less is better
    higher_is_better: bool = True
    params: Mapping[str, Any] = field(default_factory=dict)
    #: further numbers each measurement reports, a row each (see `Metric`)
    metrics: tuple[Metric, ...] = ()
    #: ``n`` is the seconds the load runs, not a count (``--duration`` replaces it)
    n_is_seconds: bool = False
    #: the CPU placement this workload always uses, whatever ``--pin`` says
    pin: str | None = None
    #: for a `Metric` row: the name of the workload whose measurements it reads
    metric_of: str | None = None

    def size(self, quick: bool) -> int:
        return self.quick_n if quick else self.n


def _sched(name: str, n: int, quick_n: int = 1000) -> Workload:
    return Workload(name, "scheduling", f"{_SCHED}:{name}", n, quick_n)


def _echo_workloads() -> list[Workload]:
    # Round trips per measurement by message size and client count; the per-byte cost
    # dominates at 100 KiB, the per-message cost at 1 KiB.
    counts = {(1, 1): 5_000, (10, 1): 4_000, (100, 1): 1_500, (1, 16): 6_000, (10, 16): 5_000, (100, 16): 2_500}
    # The TCP protocol echo with one client also has 16 KiB and 1 MiB: a row per size
    # from the per-message to the per-byte cost of the read path (a 1 MiB message takes
    # many reads of whatever size the loop reads with). The names keep the ``{kib}k``
    # form, so ``echo_tcp_protocol_*k_x1`` selects the series.
    series = {(16, 1): 3_000, (1024, 1): 600}
    workloads = []
    for family, api, kib, clients in itertools.product(
        ("tcp", "unix"), ("protocol", "streams"), (1, 10, 16, 100, 1024), (1, 16)
    ):
        n = counts.get((kib, clients))
        if n is None and (family, api) == ("tcp", "protocol"):
            n = series.get((kib, clients))
        if n is None:
            continue
        params = {"family": family, "api": api, "size": kib * 1024, "clients": clients}
        name = f"echo_{family}_{api}_{kib}k_x{clients}"
        workloads.append(Workload(name, "io", f"{_ECHO}:echo", n, 4 * clients, params=params))
    return workloads


P99 = Metric("p99_ms", "p99", "ms", higher_is_better=False)
#: the server's CPU time per request: far less moved than the wall clock by other work
#: sharing the machine
CPU_PER_REQUEST = Metric("cpu_us_per_req", "cpu", "us/req", higher_is_better=False)


def _wrk_workloads() -> list[Workload]:
    # wrk drives the server for 3 s (1 s under --quick; --duration changes both), 1
    # thread, 50 keep-alive connections. Always split: the server on one CPU, wrk on the
    # other, because a load generator sharing the server's CPU would take its cycles
    # (see docs/benchmarks.md).
    return [
        Workload(
            f"http_wrk_{server}",
            "io",
            f"{_HTTP}:wrk_http",
            3,
            1,
            unit="req/s",
            params={"server": server, "connections": 50},
            metrics=(P99, CPU_PER_REQUEST),
            n_is_seconds=True,
            pin="split",
        )
        for server in ("protocol", "aiohttp")
    ]


WORKLOADS: tuple[Workload, ...] = (
    _sched("call_soon_chain", 100_000),
    _sched("call_soon_fanout", 300_000, quick_n=2000),
    _sched("call_soon_threadsafe", 80_000),
    _sched("timers", 100_000),
    _sched("idle_tick", 80_000),
    _sched("sleep0_pingpong", 80_000),
    _sched("create_task_gather", 50_000, quick_n=2000),
    _sched("future_chain", 100_000),
    _sched("queue", 150_000),
    *_echo_workloads(),
    Workload("sock_pingpong", "io", f"{_NETIO}:sock_pingpong", 4_000, 50),
    Workload("udp_echo", "io", f"{_NETIO}:udp_echo", 5_000, 50, params={"size": 1024}),
    Workload("http_keepalive", "io", f"{_NETIO}:http_keepalive", 6_000, 200),
    *_wrk_workloads(),
    Workload("sendfile", "io", f"{_NETIO}:sendfile", 512, 1, unit="MiB/s"),
    # One streams echo, server and client in one loop, per CPU second: over real
    # loopback, and in looplet.sim's simulated network (looplet only).
    *(
        Workload(f"echo_{network}_cpu", "io", _SIM, 5_000, 20, unit="ops/cpu-s", params={"network": network})
        for network in ("real", "sim")
    ),
    Workload("run_in_executor", "other", f"{_OTHER}:run_in_executor", 3_000, 20),
    Workload("getaddrinfo_numeric", "other", f"{_OTHER}:getaddrinfo_numeric", 6_000, 20),
    Workload("subprocess_spawn", "other", f"{_OTHER}:subprocess_spawn", 250, 2),
    Workload("subprocess_pipe", "other", f"{_OTHER}:subprocess_pipe", 96, 1, unit="MiB/s"),
    Workload("loop_startup", "other", f"{_OTHER}:loop_startup", 3_000, 10),
    # The same work with looplet's tools on; the plain rows above are the tools off.
    *(
        Workload(f"{base}+{tool}", area, _TOOLS, n, quick_n, params={"tool": tool, "inner": inner, **params})
        for base, area, inner, n, quick_n, params in (
            ("call_soon_chain", "scheduling", f"{_SCHED}:call_soon_chain", 100_000, 1000, {}),
            ("sleep0_pingpong", "scheduling", f"{_SCHED}:sleep0_pingpong", 80_000, 1000, {}),
            (
                "echo_tcp_protocol_1k_x1",
                "io",
                f"{_ECHO}:echo",
                5_000,
                4,
                {"family": "tcp", "api": "protocol", "size": 1024, "clients": 1},
            ),
        )
        for tool in ("timing", "trace")
    ),
    Workload(
        "memory_idle_task", "other", f"{_MEMORY}:memory_idle_task", 10_000, 100, unit="B/task", higher_is_better=False
    ),
    Workload(
        "memory_idle_conn", "other", f"{_MEMORY}:memory_idle_conn", 500, 20, unit="B/conn", higher_is_better=False
    ),
)

BY_NAME: dict[str, Workload] = {w.name: w for w in WORKLOADS}
assert len(BY_NAME) == len(WORKLOADS), "workload names must be unique"


def metric_rows(workload: Workload) -> list[Workload]:
    """The rows of ``workload``'s further metrics, named ``<workload>_<suffix>``."""
    return [
        Workload(
            f"{workload.name}_{m.suffix}",
            workload.area,
            workload.target,
            workload.n,
            workload.quick_n,
            unit=m.unit,
            higher_is_better=m.higher_is_better,
            params=workload.params,
            n_is_seconds=workload.n_is_seconds,
            pin=workload.pin,
            metric_of=workload.name,
        )
        for m in workload.metrics
    ]


def with_duration(workloads: Iterable[Workload], seconds: int) -> list[Workload]:
    """The workloads, those that run for a time set to run for ``seconds`` (quick too)."""
    return [replace(w, n=seconds, quick_n=seconds) if w.n_is_seconds else w for w in workloads]


def select(patterns: Iterable[str], workloads: Iterable[Workload] = WORKLOADS) -> list[Workload]:
    """The workloads matching any pattern (a name, an area, or a glob), in table order.

    Raises:
        ValueError: a pattern matches nothing (a typo must not silently run less).
    """
    pool = list(workloads)
    chosen: set[str] = set()
    for pattern in patterns:
        matched = {w.name for w in pool if w.area == pattern or fnmatch.fnmatchcase(w.name, pattern)}
        if not matched:
            raise ValueError(f"no workload matches {pattern!r}; known: {', '.join(w.name for w in pool)}")
        chosen |= matched
    return [w for w in pool if w.name in chosen]
