"""Entry point of ``python -m benchmarks``; everything happens in ``cli.main``."""

from __future__ import annotations

import sys

from benchmarks.cli import main

try:
    status = main()
except KeyboardInterrupt:
    # The worker running at the time has been killed with its process group (runner.py).
    print("interrupted", file=sys.stderr)
    status = 130
raise SystemExit(status)
