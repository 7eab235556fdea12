"""Transports: asyncio's Transport API over one socket or pipe each.

base.py (the lifecycle every socket transport shares), flow.py (write flow control),
stream.py, datagram.py, pipe.py, and subprocess.py (asyncio's own subprocess
transport, started by looplet). Transports reach the engine only through the `Io`
they are made with (register interest, forget a closing fd, claim their fd) and the
public loop API. The invariant this package owns: while a transport is open it
claims its fd, and it reaches the reactor through the fd's single Source, so reading
stays registered across reads and costs no syscall per read.

What it may import: the standard library, `looplet._asyncio`, `looplet.engine` and
`looplet.services`.
"""
