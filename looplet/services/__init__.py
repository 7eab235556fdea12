"""The loop's services: what the loop does for its callers besides running callbacks.

Socket operations (`sock_recv` ... `sock_accept`: sockio.py), signal handlers
(signals.py), the default executor (executor.py), name resolution (resolver.py),
watching the loop's children (children.py) and the exception handler (errors.py).
Each takes the engine's `Io` (or, where asyncio's public API is all it needs, the
loop) and keeps its own state; none knows the concrete loop.

What it may import: the standard library, `looplet._asyncio` and `looplet.engine`.
"""
