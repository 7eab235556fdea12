"""looplet's poll/wake engine: clock, handles, wakers, run queue, timers and the scheduler.

Nothing in `_core` knows about transports or asyncio's policy machinery; it is the
part of looplet that the mypyc build compiles, so it is written with plain classes,
`__slots__` and full annotations.
"""
