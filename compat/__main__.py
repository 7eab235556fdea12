"""Entry point of ``python -m compat``; see :mod:`compat.cli`.

Role: only hands over to the command line; the invariant it keeps is that
the process exit status is exactly what :func:`compat.cli.main` returned.
"""

from __future__ import annotations

import sys

from compat.cli import main

if __name__ == "__main__":
    sys.exit(main())
