"""Subprocesses on both loops: asyncio.create_subprocess_exec/_shell, the transport
and protocol underneath, and the argument checks.

Every test runs on asyncio and on looplet through the `loop` fixture, whose leak
check also fails a test that leaves a child running or a zombie behind, or an fd
open. Children are this Python (`sys.executable -c ...`) or POSIX tools (`cat`,
`true`, `sh`), talking over pipes; no test waits on the wall clock.

Close-on-exec: with a loop, a TCP server, a client connection and its accepted end, a
Unix server and connection, a UDP endpoint, a subprocess with three pipes, read and
write pipe transports, a signal handler and an executor job all alive, every fd opened
since the loop was made has FD_CLOEXEC; and a child started then
(`asyncio.create_subprocess_exec`) lists its own fds: only 0, 1, 2 and its `pass_fds`
with the default close_fds=True, and none of the loop's fds with close_fds=False (which
leaves only close-on-exec between them).

Also the bad-input cases of subprocess_exec and subprocess_shell (tests/bad_input.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import json
import os
import signal
import sys
import tempfile
from asyncio.subprocess import DEVNULL, PIPE, STDOUT
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from bad_input import pytest_generate_tests, test_bad_input_fails_as_on_asyncio  # noqa: F401

import looplet

PY = sys.executable


def py(code: str) -> tuple[str, str, str]:
    """Arguments running `code` in a fresh Python without site (faster to start)."""
    return (PY, "-S", "-c", code)


def test_echo_through_cat(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> tuple[list[bytes], int]:
        proc = await asyncio.create_subprocess_exec("cat", stdin=PIPE, stdout=PIPE)
        assert proc.stdin is not None and proc.stdout is not None
        lines = []
        for n in range(10):
            proc.stdin.write(b"line %d\n" % n)
            await proc.stdin.drain()
            lines.append(await proc.stdout.readline())
        proc.stdin.close()
        assert await proc.stdout.read() == b""
        return lines, await proc.wait()

    lines, returncode = loop.run_until_complete(main())
    assert lines == [b"line %d\n" % n for n in range(10)]
    assert returncode == 0


def test_large_output_through_a_pipe(loop: asyncio.AbstractEventLoop) -> None:
    size = 16 * 1024 * 1024

    async def main() -> tuple[int, bytes, int]:
        proc = await asyncio.create_subprocess_exec(
            *py(f"import sys; sys.stdout.buffer.write(b'x' * {size}); sys.stderr.buffer.write(b'done')"),
            stdout=PIPE,
            stderr=PIPE,
        )
        out, err = await proc.communicate()
        return len(out), err, proc.returncode or 0

    assert loop.run_until_complete(main()) == (size, b"done", 0)


def test_large_input_and_output_through_cat(loop: asyncio.AbstractEventLoop) -> None:
    data = bytes(range(256)) * (32 * 1024)  # 8 MiB: far more than a pipe holds

    async def main() -> bytes:
        proc = await asyncio.create_subprocess_exec("cat", stdin=PIPE, stdout=PIPE)
        out, _ = await proc.communicate(data)
        return out

    assert loop.run_until_complete(main()) == data


def test_child_killed_by_a_signal(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> int:
        proc = await asyncio.create_subprocess_exec("sleep", "3600")
        proc.kill()
        return await proc.wait()

    assert loop.run_until_complete(main()) == -signal.SIGKILL


@pytest.mark.parametrize("method, sig", [("terminate", signal.SIGTERM), ("send_signal", signal.SIGINT)])
def test_terminate_and_send_signal(loop: asyncio.AbstractEventLoop, method: str, sig: int) -> None:
    async def main() -> int:
        proc = await asyncio.create_subprocess_exec("sleep", "3600")
        if method == "send_signal":
            proc.send_signal(sig)
        else:
            getattr(proc, method)()
        return await proc.wait()

    assert loop.run_until_complete(main()) == -sig


def test_child_closes_stdout_early(loop: asyncio.AbstractEventLoop) -> None:
    code = "import os, sys; os.write(1, b'bye'); os.close(1); sys.stdin.read(); sys.exit(7)"

    async def main() -> tuple[bytes, int | None, int]:
        proc = await asyncio.create_subprocess_exec(*py(code), stdin=PIPE, stdout=PIPE)
        assert proc.stdin is not None and proc.stdout is not None
        out = await proc.stdout.read()  # EOF while the child still runs
        still_running = proc.returncode
        proc.stdin.close()
        return out, still_running, await proc.wait()

    assert loop.run_until_complete(main()) == (b"bye", None, 7)


def test_communicate_with_input(loop: asyncio.AbstractEventLoop) -> None:
    code = "import sys; data = sys.stdin.buffer.read(); sys.stdout.buffer.write(data.upper()); sys.stderr.write('e')"

    async def main() -> tuple[bytes, bytes, int | None]:
        proc = await asyncio.create_subprocess_exec(*py(code), stdin=PIPE, stdout=PIPE, stderr=PIPE)
        out, err = await proc.communicate(b"hello")
        return out, err, proc.returncode

    assert loop.run_until_complete(main()) == (b"HELLO", b"e", 0)


def test_wait_racing_the_pipe_close(loop: asyncio.AbstractEventLoop) -> None:
    # wait() may learn of the exit before or after stdout's EOF arrives: both orders
    # must end with all the output read and the right return code.
    async def main() -> list[tuple[bytes, int]]:
        results = []
        for n in range(20):
            proc = await asyncio.create_subprocess_exec(*py(f"print({n}); raise SystemExit({n % 3})"), stdout=PIPE)
            assert proc.stdout is not None
            returncode, out = await asyncio.gather(proc.wait(), proc.stdout.read())
            results.append((out, returncode))
        return results

    assert loop.run_until_complete(main()) == [(b"%d\n" % n, n % 3) for n in range(20)]


def test_two_hundred_concurrent_children(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> list[tuple[bytes, int]]:
        async def one(n: int) -> tuple[bytes, int]:
            proc = await asyncio.create_subprocess_shell(f"echo {n}; exit {n % 5}", stdout=PIPE)
            out, _ = await proc.communicate()
            return out, proc.returncode or 0

        return await asyncio.gather(*(one(n) for n in range(200)))

    assert loop.run_until_complete(main()) == [(b"%d\n" % n, n % 5) for n in range(200)]


def test_cancelled_wait_leaves_no_zombie(loop: asyncio.AbstractEventLoop) -> None:
    # Nobody awaits the child when it exits: the loop must still reap it (the leak
    # check of the `loop` fixture fails on a zombie).
    async def main() -> int | None:
        proc = await asyncio.create_subprocess_exec("cat", stdin=PIPE, stdout=DEVNULL)
        assert proc.stdin is not None
        waiter = asyncio.ensure_future(proc.wait())
        await asyncio.sleep(0)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        proc.stdin.close()  # cat exits at EOF, with no one waiting for it
        while proc.returncode is None:
            await asyncio.sleep(0.001)
        return proc.returncode

    assert loop.run_until_complete(main()) == 0


def test_cancelled_communicate_then_kill(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> int:
        proc = await asyncio.create_subprocess_exec("sleep", "3600", stdout=PIPE)
        task = asyncio.ensure_future(proc.communicate())
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        proc.kill()
        return await proc.wait()

    assert loop.run_until_complete(main()) == -signal.SIGKILL


def test_writing_to_a_child_that_exited_is_a_broken_pipe(loop: asyncio.AbstractEventLoop) -> None:
    reports: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda lp, ctx: reports.append(ctx))

    async def main() -> int:
        proc = await asyncio.create_subprocess_exec("true", stdin=PIPE)
        assert proc.stdin is not None
        await proc.wait()
        with pytest.raises((BrokenPipeError, ConnectionResetError)):
            for _ in range(64):  # the first write may still fit before the close is seen
                proc.stdin.write(b"x" * 65536)
                await proc.stdin.drain()
        return await proc.wait()

    assert loop.run_until_complete(main()) == 0
    assert reports == []  # the protocol heard of it; the exception handler did not


def test_devnull_stdout_and_stderr_to_stdout(loop: asyncio.AbstractEventLoop) -> None:
    code = "import sys; sys.stdout.write('out '); sys.stdout.flush(); sys.stderr.write('err')"

    async def main() -> tuple[bytes, bytes | None]:
        merged = await asyncio.create_subprocess_exec(*py(code), stdout=PIPE, stderr=STDOUT)
        out, err = await merged.communicate()
        silent = await asyncio.create_subprocess_exec(*py(code), stdout=DEVNULL, stderr=DEVNULL)
        assert await silent.communicate() == (None, None)
        return out, err

    assert loop.run_until_complete(main()) == (b"out err", None)


def test_popen_keyword_arguments(loop: asyncio.AbstractEventLoop, tmp_path: Any) -> None:
    rfd, wfd = os.pipe()
    code = (
        "import os, sys; os.write(int(sys.argv[1]), b'via pass_fds'); "
        "print(os.getcwd(), os.environ['LOOPLET_TEST'], os.getsid(0) == os.getpid(), oct(os.umask(0)))"
    )

    def preexec() -> None:
        os.umask(0o027)  # runs in the child: the parent's umask is untouched

    async def main() -> bytes:
        proc = await asyncio.create_subprocess_exec(
            *py(code),
            str(wfd),
            stdout=PIPE,
            pass_fds=(wfd,),
            cwd=tmp_path,
            env={"LOOPLET_TEST": "env"},
            start_new_session=True,
            preexec_fn=preexec,
        )
        out, _ = await proc.communicate()
        return out

    try:
        out = loop.run_until_complete(main())
        assert os.read(rfd, 100) == b"via pass_fds"
    finally:
        os.close(rfd)
        os.close(wfd)
    assert out == f"{tmp_path} env True 0o27\n".encode()


class Recorder(asyncio.SubprocessProtocol):
    """Records the protocol calls in order."""

    def __init__(self) -> None:
        self.events: list[Any] = []
        self.done = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: Any) -> None:
        self.events.append("made")

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        if not self.events or self.events[-1] != ("data", fd):
            self.events.append(("data", fd))

    def pipe_connection_lost(self, fd: int, exc: BaseException | None) -> None:
        self.events.append(("pipe lost", fd, exc))

    def process_exited(self) -> None:
        self.events.append("exited")

    def connection_lost(self, exc: BaseException | None) -> None:
        self.events.append(("lost", exc))
        self.done.set_result(None)


def test_protocol_call_order_and_transport_api(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> tuple[Recorder, Any]:
        lp = asyncio.get_running_loop()
        transport, proto = await lp.subprocess_exec(Recorder, "cat", stdin=PIPE, stdout=PIPE, stderr=PIPE)
        assert isinstance(transport, asyncio.SubprocessTransport)
        assert transport.get_pid() > 0
        assert transport.get_returncode() is None
        assert not transport.is_closing()
        stdin = transport.get_pipe_transport(0)
        assert isinstance(stdin, asyncio.WriteTransport)
        assert isinstance(transport.get_pipe_transport(1), asyncio.ReadTransport)
        stdin.write(b"data")
        stdin.close()
        await proto.done
        returncode = transport.get_returncode()
        transport.close()
        assert transport.is_closing()
        return proto, returncode

    proto, returncode = loop.run_until_complete(main())
    assert returncode == 0
    events = proto.events
    assert events[0] == "made"
    assert events[-1] == ("lost", None)
    assert ("data", 1) in events
    # process_exited and the pipes' ends come in either order, all before connection_lost.
    assert sorted(map(str, events[1:-1])) == sorted(
        map(str, [("data", 1), ("pipe lost", 0, None), ("pipe lost", 1, None), ("pipe lost", 2, None), "exited"])
    )


def test_close_kills_a_running_child(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> int | None:
        lp = asyncio.get_running_loop()
        transport, proto = await lp.subprocess_exec(
            Recorder, "sleep", "3600", stdin=DEVNULL, stdout=DEVNULL, stderr=DEVNULL
        )
        transport.close()
        await proto.done
        return transport.get_returncode()

    assert loop.run_until_complete(main()) == -signal.SIGKILL


def test_missing_program_is_file_not_found(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> None:
        await asyncio.create_subprocess_exec("/nonexistent/looplet-no-such-program")

    with pytest.raises(FileNotFoundError):
        loop.run_until_complete(main())


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"universal_newlines": True}, "universal_newlines must be False"),
        ({"shell": True}, "shell must be False"),
        ({"bufsize": 1}, "bufsize must be 0"),
        ({"text": True}, "text must be False"),
        ({"encoding": "utf-8"}, "encoding must be None"),
        ({"errors": "strict"}, "errors must be None"),
    ],
)
def test_subprocess_exec_argument_checks(loop: asyncio.AbstractEventLoop, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=f"^{message}$"):
        loop.run_until_complete(loop.subprocess_exec(asyncio.SubprocessProtocol, "true", **kwargs))


@pytest.mark.parametrize(
    "cmd, kwargs, message",
    [
        (["true"], {}, "cmd must be a string"),
        ("true", {"universal_newlines": True}, "universal_newlines must be False"),
        ("true", {"shell": False}, "shell must be True"),
        ("true", {"bufsize": 1}, "bufsize must be 0"),
        ("true", {"text": True}, "text must be False"),
        ("true", {"encoding": "utf-8"}, "encoding must be None"),
        ("true", {"errors": "strict"}, "errors must be None"),
    ],
)
def test_subprocess_shell_argument_checks(
    loop: asyncio.AbstractEventLoop, cmd: Any, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=f"^{message}$"):
        loop.run_until_complete(loop.subprocess_shell(asyncio.SubprocessProtocol, cmd, **kwargs))


def test_create_subprocess_exec_text_mode_is_refused(loop: asyncio.AbstractEventLoop) -> None:
    with pytest.raises(ValueError, match=r"^text must be False$"):
        loop.run_until_complete(asyncio.create_subprocess_exec("true", text=True))


def test_subprocess_on_a_closed_loop_starts_no_child(leakcheck: Any) -> None:
    # looplet only: stock asyncio starts the child first and fails after, at
    # create_task, leaving the child a zombie (the leak check would catch it).
    loop = looplet.new_event_loop()
    loop.close()
    coro = loop.subprocess_exec(asyncio.SubprocessProtocol, "true")
    with pytest.raises(RuntimeError, match=r"^Event loop is closed$"):
        coro.send(None)


# -- close-on-exec: no fd of the loop reaches a child ------------------------------------


Loop = asyncio.AbstractEventLoop


class _Accepted(asyncio.Protocol):
    def __init__(self, made: asyncio.Future[asyncio.BaseTransport]) -> None:
        self.made = made

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not self.made.done():
            self.made.set_result(transport)


async def _closing(transport: asyncio.BaseTransport) -> None:
    transport.close()
    # connection_lost, which closes the fd, runs on a later tick.
    for _ in range(3):
        await asyncio.sleep(0)


async def _stop_server(server: asyncio.AbstractServer) -> None:
    server.close()
    await server.wait_closed()


async def _connect_to(
    stack: contextlib.AsyncExitStack,
    start_server: Callable[[Callable[[], asyncio.Protocol]], Awaitable[asyncio.AbstractServer]],
    connect: Callable[[asyncio.AbstractServer], Awaitable[tuple[asyncio.BaseTransport, Any]]],
) -> None:
    """A server, a client connected to it and the server's end of that connection."""
    made: asyncio.Future[asyncio.BaseTransport] = asyncio.get_running_loop().create_future()
    server = await start_server(functools.partial(_Accepted, made))
    stack.push_async_callback(_stop_server, server)
    client, _ = await connect(server)
    stack.push_async_callback(_closing, client)
    stack.push_async_callback(_closing, await made)


async def _end_child(proc: asyncio.subprocess.Process) -> None:
    # communicate() leaves stdin open on 3.11 when given no input.
    assert proc.stdin is not None
    proc.stdin.close()
    await proc.communicate()


async def open_everything(stack: contextlib.AsyncExitStack, tmp: str) -> None:
    """Give the running loop one of each kind of fd it makes; `stack` undoes them all."""
    loop = asyncio.get_running_loop()
    await _connect_to(
        stack,
        lambda factory: loop.create_server(factory, "127.0.0.1", 0),
        lambda server: loop.create_connection(asyncio.Protocol, *server.sockets[0].getsockname()[:2]),
    )
    path = os.path.join(tmp, "s")
    await _connect_to(
        stack,
        lambda factory: loop.create_unix_server(factory, path),
        lambda server: loop.create_unix_connection(asyncio.Protocol, path),
    )
    udp, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0))
    stack.push_async_callback(_closing, udp)

    # A child that lives until its stdin is closed.
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "import sys; sys.stdin.read()",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stack.push_async_callback(_end_child, proc)

    r, w = os.pipe()
    read_pipe, _ = await loop.connect_read_pipe(asyncio.Protocol, os.fdopen(r, "rb", buffering=0))
    stack.push_async_callback(_closing, read_pipe)
    write_pipe, _ = await loop.connect_write_pipe(asyncio.Protocol, os.fdopen(w, "wb", buffering=0))
    stack.push_async_callback(_closing, write_pipe)

    loop.add_signal_handler(signal.SIGUSR1, lambda: None)
    stack.callback(loop.remove_signal_handler, signal.SIGUSR1)
    assert await loop.run_in_executor(None, sum, [1, 2]) == 3


def open_fds() -> set[int]:
    """The fds open in this process now (the one os.listdir used is gone by readlink)."""
    fds = set()
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            os.readlink(f"/proc/self/fd/{name}")
            fds.add(int(name))
    return fds


def _describe(fds: set[int]) -> dict[int, str]:
    described = {}
    for fd in sorted(fds):
        with contextlib.suppress(OSError):
            described[fd] = os.readlink(f"/proc/self/fd/{fd}")
    return described


def finish(loop: Loop) -> None:
    try:
        loop.run_until_complete(loop.shutdown_default_executor())
    finally:
        loop.close()


def test_every_fd_the_loop_makes_is_close_on_exec(loop_factory: Callable[[], Loop], leakcheck: Any) -> None:
    # The snapshot comes before the loop, so the loop's own fds (poller, wake-up) count.
    before = open_fds()
    loop = loop_factory()
    try:

        async def main() -> tuple[dict[int, str], dict[int, str]]:
            with tempfile.TemporaryDirectory() as tmp:
                async with contextlib.AsyncExitStack() as stack:
                    await open_everything(stack, tmp)
                    new = _describe(open_fds() - before)
                    inheritable = {
                        fd: kind for fd, kind in new.items() if not fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC
                    }
                    return new, inheritable

        new, inheritable = loop.run_until_complete(main())
    finally:
        finish(loop)
    assert not inheritable, f"fds without FD_CLOEXEC: {inheritable}"
    # The check saw what it is about: sockets, pipes and the loop's own kernel objects
    # (epoll, eventfd, pidfd; with LOOPLET_REACTOR=poll looplet has no epoll fd).
    kinds = " ".join(new.values())
    for kind in ("anon_inode:", "socket:", "pipe:"):
        assert kind in kinds, f"no {kind} among {len(new)} fds checked: {sorted(set(new.values()))}"


# A child's view of its fds: listdir's own fd is gone by the time readlink looks at it.
CHILD_LISTS_ITS_FDS = """
import json, os
fds = []
for name in os.listdir("/proc/self/fd"):
    try:
        os.readlink("/proc/self/fd/" + name)
    except OSError:
        continue
    fds.append(int(name))
print(json.dumps(sorted(fds)))
"""


@pytest.mark.parametrize("close_fds", [True, False], ids=["close_fds", "no-close_fds"])
def test_children_inherit_none_of_the_loops_fds(
    loop_factory: Callable[[], Loop], leakcheck: Any, close_fds: bool
) -> None:
    before = open_fds()
    loop = loop_factory()
    try:

        async def main() -> tuple[set[int], set[int], int]:
            with tempfile.TemporaryDirectory() as tmp:
                async with contextlib.AsyncExitStack() as stack:
                    await open_everything(stack, tmp)
                    passed_r, passed_w = os.pipe()
                    stack.callback(os.close, passed_r)
                    stack.callback(os.close, passed_w)
                    loop_fds = open_fds() - before - {passed_r, passed_w}
                    if close_fds:
                        kwargs: dict[str, Any] = {"pass_fds": (passed_r,)}
                    else:
                        # pass_fds would turn close_fds back on; an inheritable fd is what
                        # passes without it (and shows that a leak would be seen).
                        os.set_inheritable(passed_r, True)
                        kwargs = {"close_fds": False}
                    proc = await asyncio.create_subprocess_exec(
                        sys.executable, "-I", "-c", CHILD_LISTS_ITS_FDS, stdout=asyncio.subprocess.PIPE, **kwargs
                    )
                    out, _ = await proc.communicate()
                    assert proc.returncode == 0
                    return set(json.loads(out)), loop_fds, passed_r

        child_fds, loop_fds, passed = loop.run_until_complete(main())
    finally:
        finish(loop)
    assert loop_fds, "the loop opened no fd to leak"
    assert passed in child_fds
    if close_fds:
        assert child_fds == {0, 1, 2, passed}
    else:
        # Only close-on-exec keeps them out; fds this process had before the loop (pytest's)
        # are not the loop's to close.
        assert not child_fds & loop_fds, f"inherited from the loop: {sorted(child_fds & loop_fds)}"
