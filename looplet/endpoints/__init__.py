"""Endpoints: making connections, servers, datagram endpoints, TLS, sendfile, pipes
and subprocesses, each in one place.

asyncio's own set-up logic (its argument checks and messages, per Python version),
as plain functions that take the engine's `Io`: connect.py (clients, happy
eyeballs), serve.py (servers and the accept loop), datagram.py, tls.py (TLS
transports and start_tls), sendfile.py (socket and transport sendfile, native and
fallback), processes.py (pipes and subprocesses). `EventLoop`'s methods delegate
here.

What it may import: the standard library, `looplet._asyncio`, `looplet.engine`,
`looplet.services` and `looplet.transports`.
"""
