"""looplet's compatibility runner: CPython's asyncio tests against any loop.

Role: package marker and map.  ``python -m compat --loop NAME`` runs the
``test.test_asyncio`` package of the interpreter in use (never a copy) with
the loop under test injected, one module per worker subprocess, and reports
how close that loop is to stock asyncio.  Invariant: nothing in this package
is imported by looplet itself, and the runner needs only the standard
library at run time.

Modules: ``cli`` (options, orchestration), ``supervisor`` (worker processes,
timeouts), ``worker`` (runs one module), ``inject`` (policy patch, per-loop
classes, startup check), ``tracking`` (which loops ran), ``variants`` (per-loop
class table), ``tiers`` (module classification), ``results`` (data model,
JSON), ``score`` (comparison with the baseline), ``expected`` (expectation
files), ``report`` (tables).
"""

from __future__ import annotations
