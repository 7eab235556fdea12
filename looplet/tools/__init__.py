"""Tools: seeing and steering a loop without changing what it runs.

`LoopTools` (observe.py) behind `EventLoop.statistics()`, `enable_timing()`,
`set_clock()` and `set_shuffle()`, `looplet.trace()`, and the observer and tracer
the scheduler calls on its observed path (observer.py, duck-typed: the engine does
not import this package).

What it may import: the standard library, `looplet._asyncio` and `looplet.engine`.
"""
