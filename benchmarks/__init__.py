"""looplet's benchmark harness: ``python -m benchmarks --loops looplet,asyncio,uvloop``.

Role: compare event loops on the same workloads, on the same machine, in the same
run. The parts, one role each:

- ``registry.py``: the workloads, their sizes (normal and ``--quick``) and units;
- ``cli.py``: the command line, the interleaved plan and the exit status;
- ``runner.py``: one measurement = one fresh ``python -m benchmarks.worker`` process;
- ``worker.py``: runs one workload on one loop and reports which loop really ran;
- ``results.py``: medians, spreads and ratios; ``report.py``: the table and the JSON;
- ``clients.py``: the load-generating client processes, the same for every loop;
- ``workloads/``: the workloads themselves, by area;
- ``instructions.py``, ``syscalls.py``: instructions (callgrind) and system calls
  (strace) per operation, from runs of ``n`` and ``2n`` operations of one workload.

Invariant owned by the package: a number is only ever reported for the loop that
produced it. Every measurement runs in a process of its own, and a worker whose
running loop is not of the requested loop module's family is a failure, not a sample.
"""
