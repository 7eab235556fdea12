"""The subprocess and pipe half of the loop's API: `subprocess_exec`, `subprocess_shell`,
`connect_read_pipe`, `connect_write_pipe`.

`EventLoop` inherits this facade. The pipes are looplet's own transports
(transports/pipe.py); a child's exit is heard through the loop's reactor
(children.py: a pidfd on Linux); the glue between a `Popen`, its three pipes and the
`SubprocessProtocol` is asyncio's own `base_subprocess.BaseSubprocessTransport`, so
the order of protocol calls is exactly asyncio's on each Python version
(`process_exited` before `connection_lost`, which waits for the pipes to close).
`subprocess_exec` and `subprocess_shell` themselves are asyncio's own methods, run on
this loop (see `_asyncio.base_subprocess_exec`), which calls back into
`_make_subprocess_transport` here.

The invariant owned here: every child the loop starts is watched from the moment it
exists, so it is reaped once and never left a zombie while the loop runs, and a
transport whose start fails is closed (its child killed and waited for) before the
error reaches the caller.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from looplet._asyncio import BaseSubprocessTransport, base_subprocess_exec, base_subprocess_shell
from looplet.services.children import ChildWatcher
from looplet.services.errors import logger
from looplet.transports.pipe import ReadPipeTransport, WritePipeTransport

if TYPE_CHECKING:
    from looplet.loop import EventLoop


def _format_pipe(fd: Any) -> str:
    if fd == subprocess.PIPE:
        return "<pipe>"
    if fd == subprocess.STDOUT:
        return "<stdout>"
    return repr(fd)


class SubprocessTransport(BaseSubprocessTransport):
    """asyncio's subprocess transport, started with `subprocess.Popen` (bytes, unbuffered)."""

    def _start(  # type: ignore[override]
        self, args: Any, shell: bool, stdin: Any, stdout: Any, stderr: Any, bufsize: int, **kwargs: Any
    ) -> None:
        self._proc = subprocess.Popen(
            args,
            shell=shell,
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            universal_newlines=False,
            bufsize=bufsize,
            **kwargs,
        )


class Processes(asyncio.AbstractEventLoop):
    """The subprocess and pipe API of `EventLoop` (mixed in; not usable alone)."""

    if TYPE_CHECKING:
        _debug: bool
        _child_watcher: ChildWatcher | None

    def _loop_self(self) -> EventLoop:
        return self  # type: ignore[return-value]  # Processes only exists inside EventLoop

    # -- pipes -----------------------------------------------------------------------

    async def connect_read_pipe(self, protocol_factory: Callable[[], Any], pipe: Any) -> tuple[Any, Any]:
        """Read from `pipe` (a pipe, FIFO, tty or socket file object) through a protocol.

        Raises:
            ValueError: `pipe` is a regular file or anything else that cannot be polled.
        """
        return await self._connect_pipe(ReadPipeTransport, "Read", protocol_factory, pipe)

    async def connect_write_pipe(self, protocol_factory: Callable[[], Any], pipe: Any) -> tuple[Any, Any]:
        """Write to `pipe` (a pipe, FIFO, character device or socket file object) through a protocol.

        Raises:
            ValueError: `pipe` is a regular file or anything else that cannot be polled.
        """
        return await self._connect_pipe(WritePipeTransport, "Write", protocol_factory, pipe)

    async def _connect_pipe(
        self, transport_class: Any, label: str, protocol_factory: Callable[[], Any], pipe: Any
    ) -> tuple[Any, Any]:
        protocol = protocol_factory()
        waiter = self.create_future()
        transport = transport_class(self._loop_self(), pipe, protocol, waiter)
        try:
            await waiter
        except BaseException:
            transport.close()
            raise
        if self._debug:
            logger.debug("%s pipe %r connected: (%r, %r)", label, pipe.fileno(), transport, protocol)
        return transport, protocol

    # -- subprocesses ------------------------------------------------------------------

    def _log_subprocess(self, msg: str, stdin: Any, stdout: Any, stderr: Any) -> None:
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

    async def subprocess_shell(  # type: ignore[override]
        self,
        protocol_factory: Callable[[], Any],
        cmd: bytes | str,
        *,
        stdin: Any = subprocess.PIPE,
        stdout: Any = subprocess.PIPE,
        stderr: Any = subprocess.PIPE,
        universal_newlines: bool = False,
        shell: bool = True,
        bufsize: int = 0,
        encoding: Any = None,
        errors: Any = None,
        text: Any = None,
        **kwargs: Any,
    ) -> tuple[Any, Any]:
        """Run `cmd` through the shell; return (SubprocessTransport, protocol).

        Raises:
            ValueError: `cmd` is not a string, or an argument asks for text mode,
                buffering or no shell, as in asyncio.
        """
        return await base_subprocess_shell(  # type: ignore[no-any-return]
            self,
            protocol_factory,
            cmd,
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            universal_newlines=universal_newlines,
            shell=shell,
            bufsize=bufsize,
            encoding=encoding,
            errors=errors,
            text=text,
            **kwargs,
        )

    async def subprocess_exec(  # type: ignore[override]
        self,
        protocol_factory: Callable[[], Any],
        program: Any,
        *args: Any,
        stdin: Any = subprocess.PIPE,
        stdout: Any = subprocess.PIPE,
        stderr: Any = subprocess.PIPE,
        universal_newlines: bool = False,
        shell: bool = False,
        bufsize: int = 0,
        encoding: Any = None,
        errors: Any = None,
        text: Any = None,
        **kwargs: Any,
    ) -> tuple[Any, Any]:
        """Run `program` with `args` (no shell); return (SubprocessTransport, protocol).

        Raises:
            ValueError: an argument asks for text mode, buffering or a shell, as in asyncio.
        """
        return await base_subprocess_exec(  # type: ignore[no-any-return]
            self,
            protocol_factory,
            program,
            *args,
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            universal_newlines=universal_newlines,
            shell=shell,
            bufsize=bufsize,
            encoding=encoding,
            errors=errors,
            text=text,
            **kwargs,
        )

    async def _make_subprocess_transport(  # type: ignore[override]
        self,
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
        loop = self._loop_self()
        loop._check_closed()
        watcher = self._child_watcher
        if watcher is None:
            watcher = self._child_watcher = ChildWatcher(loop)
        waiter = self.create_future()
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
