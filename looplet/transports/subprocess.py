"""SubprocessTransport: asyncio's subprocess transport, started by looplet.

asyncio's `base_subprocess.BaseSubprocessTransport` orders the protocol calls and
connects the child's pipes through the loop's `connect_read_pipe` and
`connect_write_pipe` (looplet's pipe transports); looplet supplies only `_start`.
The invariant owned here: the child is started with bytes pipes and no buffering,
as asyncio's `subprocess_exec` promises.
"""

from __future__ import annotations

import subprocess
from typing import Any

from looplet._asyncio import BaseSubprocessTransport


class SubprocessTransport(BaseSubprocessTransport):
    """asyncio's subprocess transport, started with `subprocess.Popen` (bytes, unbuffered)."""

    def _start(  # type: ignore[override]
        self, args: Any, shell: bool, stdin: Any, stdout: Any, stderr: Any, bufsize: int, **kwargs: Any
    ) -> None:
        self._proc = subprocess.Popen(
            args,
            shell=shell,
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            universal_newlines=False,
            bufsize=bufsize,
            **kwargs,
        )
