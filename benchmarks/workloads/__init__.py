"""The workloads, by area: ``scheduling``, ``echo`` and ``netio`` (I/O), ``other``, ``memory``.

Each workload is ``function(ctx, n, **params) -> Measurement`` (a coroutine function is
run on the loop under test by the worker; a plain one makes its own loops through
``ctx``). Invariant: a workload never picks its loop; it gets it from `base.Context`.
"""
