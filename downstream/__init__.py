"""downstream: other projects' asyncio test suites, run on stock asyncio and on looplet.

`python -m downstream` (downstream/cli.py) installs pinned releases of a few widely used
asyncio projects with their test dependencies, runs each project's tests on both loops
in the same job, and fails unless every test that passes on asyncio passes on looplet.
See docs/downstream.md.

The invariant of the package: nothing here imports looplet or pytest at import time
(downstream/plugin.py, which needs both, is loaded only inside the projects' test
processes), and nothing is written into the repository: downloads, venvs and run
directories live in the cache directory.
"""
