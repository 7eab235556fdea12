"""The engine: time, the run queue, timers, the scheduler, and the reactor.

What it owns: `Clock` (clock.py), looplet's own handles, built outside debug mode
(handles.py), the timer heap (timers.py), the `Watch` a reactor queues when an fd is
ready in one direction (watch.py), the tick (scheduler.py: poll, fire due timers, run
what is ready; the only place callbacks run), the OS readiness backends with their
`Source` table and the wake-up fd they own (reactor/), and `Io`
(io.py), the one interface through which the layers above reach all of it.

What it may import: the standard library and `looplet._asyncio`; nothing else of
looplet. The mypyc build compiles this layer, all but clock.py
(setup.py says why).
"""
