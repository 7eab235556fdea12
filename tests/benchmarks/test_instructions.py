"""Tests of the callgrind instruction counter (benchmarks/instructions.py): its
arithmetic and its refusal to turn a failed run into a number."""

from __future__ import annotations

import shutil

import pytest

from benchmarks import instructions
from benchmarks.registry import Workload

CALLGRIND_TAIL = "==1== Events    : Ir\n==1== Collected : 1234567\n==1==\n==1== I   refs:      1,234,567\n"


def test_parse_collected_reads_the_total() -> None:
    assert instructions.parse_collected(CALLGRIND_TAIL) == 1234567


def test_parse_collected_without_a_total_is_an_error() -> None:
    with pytest.raises(ValueError, match="no 'Collected'"):
        instructions.parse_collected("valgrind: command not found\n")


def test_per_op_subtracts_the_fixed_cost() -> None:
    # 1000 ops cost 5,000,000 + fixed; 2000 ops 10,000,000 + fixed: 5000 per op.
    assert instructions.per_op(7_000_000, 12_000_000, 1000) == 5000
    with pytest.raises(ValueError):
        instructions.per_op(1, 2, 0)


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
def test_counts_a_real_workload_and_refuses_a_failing_one() -> None:
    idle = Workload("idle_tick", "scheduling", "benchmarks.workloads.scheduling:idle_tick", 100, 10)
    small, big = instructions.count("asyncio", idle, 200), instructions.count("asyncio", idle, 400)
    assert 0 < small < big
    broken = Workload("broken", "scheduling", "benchmarks.workloads.scheduling:no_such_workload", 100, 10)
    with pytest.raises(RuntimeError, match="worker reported failed"):
        instructions.count("asyncio", broken, 10)
