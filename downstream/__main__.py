"""Entry point: `python -m downstream` (see downstream/cli.py)."""

import sys

from downstream.cli import main

sys.exit(main())
