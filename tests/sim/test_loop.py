"""SimLoop (looplet/sim/loop.py): what leaves the simulation is refused, by name.

Every loop call that would reach a real fd, a thread, a child process, a pipe, a
Unix socket, a signal, a file or a socket that is not the program's own raises
NotSimulatedError whose message names the call; nothing of it runs. (The program's
own sockets on the simulated network: tests/sim/test_sockets.py.) A crashed process's unwinding reports nothing
to the exception handler; a live one's errors are reported as usual.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from collections.abc import Callable
from typing import Any

import pytest

from looplet.sim import NotSimulatedError, Simulation


def run_in_host(body: Callable[[asyncio.AbstractEventLoop], Any]) -> Any:
    async def client() -> Any:
        result = body(asyncio.get_running_loop())
        if asyncio.iscoroutine(result):
            result = await result
        return result

    sim = Simulation()
    sim.client("client", client)
    return sim.run()["client"]


def noop(*args: Any) -> None:
    pass


SYNC_REFUSALS: list[tuple[str, Callable[[Any], Any]]] = [
    ("loop.run_in_executor()", lambda loop: loop.run_in_executor(None, noop)),
    ("loop.set_default_executor()", lambda loop: loop.set_default_executor(None)),
    ("loop.add_reader()", lambda loop: loop.add_reader(0, noop)),
    ("loop.add_writer()", lambda loop: loop.add_writer(1, noop)),
    ("loop.remove_reader()", lambda loop: loop.remove_reader(0)),
    ("loop.remove_writer()", lambda loop: loop.remove_writer(1)),
    ("loop.add_signal_handler()", lambda loop: loop.add_signal_handler(signal.SIGUSR1, noop)),
]

ASYNC_REFUSALS: list[tuple[str, Callable[[Any], Any]]] = [
    ("loop.sock_recv()", lambda loop: loop.sock_recv(None, 1)),
    ("loop.sock_recv_into()", lambda loop: loop.sock_recv_into(None, bytearray(1))),
    ("loop.sock_recvfrom()", lambda loop: loop.sock_recvfrom(None, 1)),
    ("loop.sock_recvfrom_into()", lambda loop: loop.sock_recvfrom_into(None, bytearray(1))),
    ("loop.sock_sendall()", lambda loop: loop.sock_sendall(None, b"x")),
    ("loop.sock_sendto()", lambda loop: loop.sock_sendto(None, b"x", ("h", 1))),
    ("loop.sock_connect()", lambda loop: loop.sock_connect(None, ("h", 1))),
    ("loop.sock_accept()", lambda loop: loop.sock_accept(None)),
    ("loop.sock_sendfile()", lambda loop: loop.sock_sendfile(None, None)),
    ("loop.sendfile()", lambda loop: loop.sendfile(None, None)),
    ("loop.create_unix_connection()", lambda loop: loop.create_unix_connection(asyncio.Protocol, "/tmp/x")),
    ("loop.create_unix_server()", lambda loop: loop.create_unix_server(asyncio.Protocol, "/tmp/x")),
    ("loop.connect_accepted_socket()", lambda loop: loop.connect_accepted_socket(asyncio.Protocol, None)),
    ("loop.connect_read_pipe()", lambda loop: loop.connect_read_pipe(asyncio.Protocol, None)),
    ("loop.connect_write_pipe()", lambda loop: loop.connect_write_pipe(asyncio.Protocol, None)),
    ("loop.subprocess_exec()", lambda loop: loop.subprocess_exec(asyncio.SubprocessProtocol, "true")),
    ("loop.subprocess_shell()", lambda loop: loop.subprocess_shell(asyncio.SubprocessProtocol, "true")),
    ("create_connection(sock=...)", lambda loop: loop.create_connection(asyncio.Protocol, sock=object())),
    ("create_server(sock=...)", lambda loop: loop.create_server(asyncio.Protocol, sock=object())),
    (
        "create_datagram_endpoint(sock=...)",
        lambda loop: loop.create_datagram_endpoint(asyncio.DatagramProtocol, sock=object()),
    ),
    (
        "create_datagram_endpoint(family=AF_UNIX)",
        lambda loop: loop.create_datagram_endpoint(asyncio.DatagramProtocol, family=socket.AF_UNIX),
    ),
    (
        "create_datagram_endpoint(allow_broadcast=True)",
        lambda loop: loop.create_datagram_endpoint(asyncio.DatagramProtocol, allow_broadcast=True),
    ),
]


@pytest.mark.parametrize(("call", "make"), SYNC_REFUSALS, ids=[c for c, _ in SYNC_REFUSALS])
def test_a_call_that_leaves_the_simulation_is_refused_by_name(call: str, make: Callable[[Any], Any]) -> None:
    def body(loop: Any) -> str:
        with pytest.raises(NotSimulatedError) as info:
            make(loop)
        return str(info.value)

    message = run_in_host(body)
    assert message.startswith(f"{call} is not available in a simulation: ")


@pytest.mark.parametrize(("call", "make"), ASYNC_REFUSALS, ids=[c for c, _ in ASYNC_REFUSALS])
def test_an_async_call_that_leaves_the_simulation_is_refused_by_name(call: str, make: Callable[[Any], Any]) -> None:
    async def body(loop: Any) -> str:
        with pytest.raises(NotSimulatedError) as info:
            await make(loop)
        return str(info.value)

    message = run_in_host(body)
    assert message.startswith(f"{call} is not available in a simulation: ")


def test_asyncio_helpers_that_use_threads_or_processes_are_refused() -> None:
    async def body(loop: Any) -> list[str]:
        messages = []
        for make in (
            lambda: asyncio.to_thread(noop),
            lambda: asyncio.create_subprocess_exec("true"),
            lambda: asyncio.open_unix_connection("/tmp/nothing"),
        ):
            with pytest.raises(NotSimulatedError) as info:
                await make()
            messages.append(str(info.value).split(" is not")[0])
        return messages

    assert run_in_host(body) == ["loop.run_in_executor()", "loop.subprocess_exec()", "loop.create_unix_connection()"]


def test_nothing_refused_ran(tmp_path: Any) -> None:
    path = tmp_path / "sock"

    async def body(loop: Any) -> None:
        with pytest.raises(NotSimulatedError):
            await loop.create_unix_server(asyncio.Protocol, str(path))

    run_in_host(body)
    assert not os.path.exists(path)


def test_remove_signal_handler_has_nothing_to_remove() -> None:
    assert run_in_host(lambda loop: loop.remove_signal_handler(signal.SIGUSR1)) is False


def test_a_live_process_errors_are_reported(loop_errors: Any) -> None:
    def body(loop: Any) -> Any:
        def broken() -> None:
            raise ValueError("live bug")

        loop.call_soon(broken)
        return asyncio.sleep(1)

    run_in_host(body)
    loop_errors.take("Exception in callback", ValueError)


def test_a_simulated_socket_object_refuses_io_and_answers_for_its_addresses() -> None:
    async def server() -> None:
        srv = await asyncio.start_server(lambda r, w: w.close(), None, 7)
        await srv.serve_forever()

    async def client() -> list[Any]:
        _reader, writer = await asyncio.open_connection("server", 7)
        sock = writer.get_extra_info("socket")
        answers: list[Any] = [sock.fileno(), sock.getsockname(), sock.getpeername()]
        writer.close()
        await writer.wait_closed()
        from looplet.sim.sockets import SimSocket

        raw = SimSocket(socket.SOCK_DGRAM, ("0.0.0.0", 1))
        answers.append(repr(raw))
        with pytest.raises(OSError, match="not connected"):
            raw.getpeername()
        for call in ("send", "sendall", "sendto", "recv", "recv_into", "recvfrom", "accept", "connect"):
            args = () if call == "accept" else (b"x",)
            with pytest.raises(
                NotSimulatedError, match=f"socket.{call}\\(\\) on a transport's socket is not available"
            ):
                getattr(raw, call)(*args)
        with pytest.raises(NotSimulatedError, match="listen"):
            raw.listen()
        raw.setblocking(False)
        answers.append(raw.gettimeout())
        return answers

    sim = Simulation()
    sim.host("server", server)
    sim.client("client", client)
    assert sim.run()["client"] == [
        -1,
        ("10.0.0.2", 49152),
        ("10.0.0.1", 7),
        "<SimSocket datagram 0.0.0.0:1>",
        0.0,
    ]
