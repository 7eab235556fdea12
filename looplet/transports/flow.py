"""WriteFlowControl: the high/low water marks every writing transport shares.

The invariant owned here: `pause_writing()` and `resume_writing()` alternate, starting
with a pause, and each is called only on a crossing: pause when the buffered bytes
rise above the high mark, resume when they fall to the low mark or below. A protocol
that raises in either is reported through the exception handler; the transport goes on.
"""

from __future__ import annotations

import asyncio
import asyncio.transports  # mypyc looks base classes up where they are defined
from typing import Any

from looplet._mypyc import mypyc_attr


@mypyc_attr(native_class=False)
class WriteFlowControl(asyncio.WriteTransport):
    """Water marks and the pause/resume calls; the transport says how much it buffers."""

    # Plain class attributes, not __init__ state: a half-built transport's __repr__
    # may read these.
    _protocol_paused: bool = False
    _high_water: int = 64 * 1024
    _low_water: int = 16 * 1024
    _loop: Any

    def get_write_buffer_limits(self) -> tuple[int, int]:
        """The (low, high) water marks of write flow control."""
        return (self._low_water, self._high_water)

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        """Set the water marks (default high 64 KiB, low high/4), as asyncio does.

        Raises:
            ValueError: not high >= low >= 0.
        """
        if high is None:
            high = 64 * 1024 if low is None else 4 * low
        if low is None:
            low = high // 4
        if not high >= low >= 0:
            raise ValueError(f"high ({high!r}) must be >= low ({low!r}) must be >= 0")
        self._high_water = high
        self._low_water = low
        self._maybe_pause_protocol()

    def _maybe_pause_protocol(self) -> None:
        if self._protocol_paused or self.get_write_buffer_size() <= self._high_water:
            return
        self._protocol_paused = True
        protocol = self.get_protocol()
        try:
            protocol.pause_writing()
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._loop.call_exception_handler(
                {
                    "message": "protocol.pause_writing() failed",
                    "exception": exc,
                    "transport": self,
                    "protocol": protocol,
                }
            )

    def _maybe_resume_protocol(self) -> None:
        if not self._protocol_paused or self.get_write_buffer_size() > self._low_water:
            return
        self._protocol_paused = False
        protocol = self.get_protocol()
        try:
            protocol.resume_writing()
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._loop.call_exception_handler(
                {
                    "message": "protocol.resume_writing() failed",
                    "exception": exc,
                    "transport": self,
                    "protocol": protocol,
                }
            )
