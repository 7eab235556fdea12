"""Subprocesses and pipes: the set-up behind `subprocess_exec`, `subprocess_shell`,
`connect_read_pipe` and `connect_write_pipe`.

The pipes are looplet's own transports (transports/pipe.py); a child's exit is heard
through the loop's reactor (services/children.py: a pidfd on Linux); the glue between
a `Popen`, its three pipes and the `SubprocessProtocol` is asyncio's own
`BaseSubprocessTransport` (transports/subprocess.py), so the order of protocol calls
is exactly asyncio's on each Python version (`process_exited` before
`connection_lost`, which waits for the pipes to close). `subprocess_exec` and
`subprocess_shell` themselves are asyncio's own methods, run on the loop (see
`_asyncio.base_subprocess_exec`), which call back into the loop's
`_make_subprocess_transport`, and through it `make_subprocess_transport` here.

The invariant owned here: every child the loop starts is watched from the moment it
exists, so it is reaped once and never left a zombie while the loop runs, and a
transport whose start fails is closed (its child killed and waited for) before the
error reaches the caller.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from looplet.services.children import ChildWatcher
from looplet.services.errors import logger
from looplet.transports.subprocess import SubprocessTransport

if TYPE_CHECKING:
    from looplet.engine.io import Io


def _format_pipe(fd: Any) -> str:
    if fd == subprocess.PIPE:
        return "<pipe>"
    if fd == subprocess.STDOUT:
        return "<stdout>"
    return repr(fd)


async def connect_pipe(
    io: Io, transport_class: Any, label: str, protocol_factory: Callable[[], Any], pipe: Any
) -> tuple[Any, Any]:
    """A pipe transport of `transport_class` over `pipe`, connected to a new protocol."""
    protocol = protocol_factory()
    waiter = io.loop.create_future()
    transport = transport_class(io, pipe, protocol, waiter)
    try:
        await waiter
    except BaseException:
        transport.close()
        raise
    if io.debug:
        logger.debug("%s pipe %r connected: (%r, %r)", label, pipe.fileno(), transport, protocol)
    return transport, protocol


def log_subprocess(msg: str, stdin: Any, stdout: Any, stderr: Any) -> None:
    """asyncio's debug-mode line about a subprocess and its pipes."""
    info = [msg]
    if stdin is not None:
        info.append(f"stdin={_format_pipe(stdin)}")
    if stdout is not None and stderr == subprocess.STDOUT:
        info.append(f"stdout=stderr={_format_pipe(stdout)}")
    else:
        if stdout is not None:
            info.append(f"stdout={_format_pipe(stdout)}")
        if stderr is not None:
            info.append(f"stderr={_format_pipe(stderr)}")
    logger.debug(" ".join(info))


async def make_subprocess_transport(
    io: Io,
    watcher: ChildWatcher,
    protocol: Any,
    args: Any,
    shell: bool,
    stdin: Any,
    stdout: Any,
    stderr: Any,
    bufsize: int,
    extra: Any = None,
    **kwargs: Any,
) -> SubprocessTransport:
    """Start the child, watch it, and wait until its pipes are connected."""
    loop = io.loop
    waiter = loop.create_future()
    transport = SubprocessTransport(
        loop, protocol, args, shell, stdin, stdout, stderr, bufsize, waiter=waiter, extra=extra, **kwargs
    )
    pid = transport.get_pid()
    assert pid is not None  # _start() succeeded, or the constructor raised
    watcher.watch(pid, lambda returncode: _child_exited(transport, returncode))
    try:
        await waiter
    except (SystemExit, KeyboardInterrupt):
        raise
    except BaseException:
        transport.close()
        await transport._wait()
        raise
    return transport


def _child_exited(transport: SubprocessTransport, returncode: int | None) -> None:
    if returncode is None:
        # Reaped by someone else: by Popen itself (close() polls it), whose status is
        # then on the Popen object; else by a stranger, and asyncio's answer is 255.
        returncode = transport._proc.returncode if transport._proc is not None else None
        if returncode is None:
            logger.warning(
                "child process pid %d exit status already read: will report returncode 255", transport.get_pid()
            )
            returncode = 255
    transport._process_exited(returncode)
