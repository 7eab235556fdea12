"""The exceptions of looplet.sim: what a simulation raises of its own.

Everything else a simulated program sees is what a real one would see (OSError and
its subclasses with the errno a kernel would give, socket.gaierror); these two name
the simulation's own limits: a call it refuses, and a run that did not finish.
"""

from __future__ import annotations


class NotSimulatedError(RuntimeError):
    """A call would reach outside the simulation (a real fd, a thread, a process), or
    asks for something the simulated network does not model; the message names the call."""


class SimulationTimeout(RuntimeError):
    """The clients did not all finish within the simulation's `duration` (virtual seconds)."""


class SeedFailure(AssertionError):
    """`sweep` found a seed whose run fails; `seed` names it, `__cause__` is the failure."""

    def __init__(self, seed: int, error: BaseException) -> None:
        super().__init__(f"seed {seed} fails: {type(error).__name__}: {error}")
        self.seed = seed
        self.error = error
