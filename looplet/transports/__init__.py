"""looplet's transports: asyncio's Transport API on looplet's reactor and wakers.

Transports talk to the loop only through its reactor (`loop._add_io`/`_remove_io`,
which register wakers) and `call_soon`; they never reach into another module's
state. The invariant this package owns: while a transport is open its fd is in
`loop._transports`, and it reaches the reactor through the fd's single Source, so
reading stays registered across reads and costs no syscall per read.
"""
