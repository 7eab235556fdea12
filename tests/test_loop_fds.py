"""Watching file descriptors: add_reader, remove_reader, add_writer, remove_writer.

Covers readers and writers on a socketpair and a pipe (fds and file objects, with
arguments), level-triggered readiness (a callback runs again while the fd stays
ready), remove_* returning True/False, replacing a reader, a reader and a writer on
one fd, EOF, invalid fds and file objects (ValueError), calls after close, an fd
number reused after its first owner removed its reader and closed it, and a socket
closed while watched, whose registration is still found by the socket object.
"""

from __future__ import annotations

import asyncio
import os
import socket
import weakref

import pytest


def test_reader_runs_when_readable(loop, socketpair):
    a, b = socketpair
    got = []

    def on_readable(tag):
        got.append((tag, a.recv(100)))
        loop.remove_reader(a.fileno())
        loop.stop()

    loop.add_reader(a.fileno(), on_readable, "tag")
    loop.call_soon(b.send, b"hello")
    loop.run_forever()
    assert got == [("tag", b"hello")]


def test_reader_accepts_a_file_object(loop, socketpair):
    a, b = socketpair
    got = []

    def on_readable():
        got.append(a.recv(100))
        loop.stop()

    loop.add_reader(a, on_readable)
    b.send(b"obj")
    loop.run_forever()
    assert got == [b"obj"]
    assert loop.remove_reader(a) is True


def test_reader_is_level_triggered(loop, socketpair):
    a, b = socketpair
    calls = []

    def on_readable():
        # Do not read: the fd stays readable, so the callback must run again.
        calls.append(len(calls))
        if len(calls) == 3:
            assert a.recv(100) == b"x"
            loop.remove_reader(a.fileno())
            loop.stop()

    loop.add_reader(a.fileno(), on_readable)
    b.send(b"x")
    loop.run_forever()
    assert calls == [0, 1, 2]


def test_reader_sees_data_that_arrives_later(loop, socketpair):
    a, b = socketpair
    got = []

    def on_readable():
        got.append(a.recv(100))
        if len(got) == 2:
            loop.remove_reader(a.fileno())
            loop.stop()
        else:
            loop.call_later(0.001, b.send, b"second")

    loop.add_reader(a.fileno(), on_readable)
    loop.call_later(0.001, b.send, b"first")
    loop.run_forever()
    assert got == [b"first", b"second"]


def test_raising_reader_reaches_the_exception_handler_and_stays(loop, socketpair):
    a, b = socketpair
    contexts = []
    calls = []
    loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))

    def on_readable():
        calls.append(len(calls))
        if len(calls) == 1:
            raise OSError("reader failed")
        a.recv(100)
        loop.remove_reader(a.fileno())
        loop.stop()

    loop.add_reader(a.fileno(), on_readable)
    b.send(b"x")
    loop.run_forever()
    assert calls == [0, 1]  # still registered after raising
    assert len(contexts) == 1
    assert isinstance(contexts[0]["exception"], OSError)
    assert contexts[0]["message"].startswith("Exception in callback")
    assert isinstance(contexts[0]["handle"], asyncio.Handle)


def test_remove_reader_return_value(loop, socketpair):
    a, _ = socketpair
    assert loop.remove_reader(a.fileno()) is False
    loop.add_reader(a.fileno(), print)
    assert loop.remove_reader(a.fileno()) is True
    assert loop.remove_reader(a.fileno()) is False


def test_removed_reader_does_not_run(loop, socketpair):
    a, b = socketpair
    calls = []
    loop.add_reader(a.fileno(), calls.append, "reader")
    b.send(b"data")
    assert loop.remove_reader(a.fileno()) is True
    loop.call_later(0.005, loop.stop)
    loop.run_forever()
    assert calls == []


def test_replacing_a_reader(loop, socketpair):
    a, b = socketpair
    calls = []

    def second():
        calls.append("second")
        a.recv(100)
        loop.remove_reader(a.fileno())
        loop.stop()

    loop.add_reader(a.fileno(), calls.append, "first")
    loop.add_reader(a.fileno(), second)
    b.send(b"x")
    loop.run_forever()
    assert calls == ["second"]
    assert loop.remove_reader(a.fileno()) is False


def test_writer_runs_when_writable_and_is_level_triggered(loop, socketpair):
    a, _ = socketpair
    calls = []

    def on_writable(tag):
        calls.append(tag)
        if len(calls) == 3:
            assert loop.remove_writer(a.fileno()) is True
            loop.stop()

    loop.add_writer(a.fileno(), on_writable, "w")
    loop.run_forever()
    assert calls == ["w", "w", "w"]


def test_remove_writer_return_value(loop, socketpair):
    a, _ = socketpair
    assert loop.remove_writer(a) is False
    loop.add_writer(a, print)
    assert loop.remove_writer(a) is True
    assert loop.remove_writer(a) is False


def test_writer_waits_for_a_full_socket_to_drain(loop, socketpair):
    a, b = socketpair
    sent = 0
    try:
        while True:
            sent += a.send(b"\0" * 65536)
    except BlockingIOError:
        pass
    order = []

    def on_writable():
        order.append("writable")
        loop.remove_writer(a.fileno())
        loop.stop()

    def drain():
        order.append("drained")
        received = 0
        while received < sent:
            received += len(b.recv(sent - received))

    loop.add_writer(a.fileno(), on_writable)
    loop.call_later(0.005, drain)
    loop.run_forever()
    assert order == ["drained", "writable"]


def test_reader_and_writer_on_one_fd(loop, socketpair):
    a, b = socketpair
    events = []

    def on_writable():
        events.append("writable")
        loop.remove_writer(a.fileno())
        b.send(b"ping")

    def on_readable():
        events.append(("readable", a.recv(100)))
        loop.remove_reader(a.fileno())
        loop.stop()

    loop.add_reader(a.fileno(), on_readable)
    loop.add_writer(a.fileno(), on_writable)
    loop.run_forever()
    assert events == ["writable", ("readable", b"ping")]


def test_removing_the_reader_keeps_the_writer(loop, socketpair):
    a, _ = socketpair
    calls = []

    def on_writable():
        calls.append("w")
        loop.remove_writer(a.fileno())
        loop.stop()

    loop.add_reader(a.fileno(), calls.append, "r")
    loop.add_writer(a.fileno(), on_writable)
    assert loop.remove_reader(a.fileno()) is True
    loop.run_forever()
    assert calls == ["w"]


def test_reader_sees_eof(loop, socketpair):
    a, b = socketpair
    got = []

    def on_readable():
        got.append(a.recv(100))
        loop.remove_reader(a.fileno())
        loop.stop()

    loop.add_reader(a.fileno(), on_readable)
    b.shutdown(socket.SHUT_WR)
    loop.run_forever()
    assert got == [b""]


def test_reader_on_a_pipe(loop):
    rfd, wfd = os.pipe()
    try:
        os.set_blocking(rfd, False)
        got = []

        def on_readable():
            got.append(os.read(rfd, 100))
            loop.remove_reader(rfd)
            loop.stop()

        loop.add_reader(rfd, on_readable)
        loop.call_soon(os.write, wfd, b"through a pipe")
        loop.run_forever()
        assert got == [b"through a pipe"]
    finally:
        os.close(rfd)
        os.close(wfd)


@pytest.mark.parametrize("method", ["add_reader", "add_writer"])
def test_invalid_fd_is_value_error(loop, method):
    add = getattr(loop, method)
    with pytest.raises(ValueError, match=r"^Invalid file descriptor: -1$"):
        add(-1, print)
    with pytest.raises(ValueError, match=r"^Invalid file object: 'not a file'$"):
        add("not a file", print)
    with pytest.raises(ValueError, match=r"^Invalid file object: None$"):
        add(None, print)


@pytest.mark.parametrize("method", ["remove_reader", "remove_writer"])
def test_remove_invalid_fd_is_value_error(loop, method):
    remove = getattr(loop, method)
    with pytest.raises(ValueError, match=r"^Invalid file descriptor: -1$"):
        remove(-1)
    with pytest.raises(ValueError, match=r"^Invalid file object: 'not a file'$"):
        remove("not a file")


def test_after_close(loop, socketpair):
    a, _ = socketpair
    loop.add_reader(a.fileno(), print)
    loop.close()
    assert loop.remove_reader(a.fileno()) is False
    assert loop.remove_writer(a.fileno()) is False
    with pytest.raises(RuntimeError, match=r"^Event loop is closed$"):
        loop.add_reader(a.fileno(), print)
    with pytest.raises(RuntimeError, match=r"^Event loop is closed$"):
        loop.add_writer(a.fileno(), print)


def test_fd_number_reused_after_remove_and_close(loop):
    got = []

    def on_readable(sock, tag):
        got.append((tag, sock.recv(100)))
        loop.remove_reader(sock.fileno())
        loop.stop()

    a, b = socket.socketpair()
    with a, b:
        a.setblocking(False)
        loop.add_reader(a.fileno(), on_readable, a, "old")
        b.send(b"1")
        loop.run_forever()
        old_fd = a.fileno()
    # a and b are closed; the lowest free fd numbers are theirs again.
    c, d = socket.socketpair()
    with c, d:
        assert c.fileno() == old_fd
        c.setblocking(False)
        loop.add_reader(c.fileno(), on_readable, c, "new")
        d.send(b"2")
        loop.run_forever()
    assert got == [("old", b"1"), ("new", b"2")]


def _unwritable(sock: socket.socket) -> None:
    # Fill the send buffer (the peer reads nothing): the socket stops being writable.
    try:
        while True:
            sock.send(b"x" * 65536)
    except BlockingIOError:
        pass


@pytest.mark.parametrize("direction", ["reader", "writer"])
def test_socket_closed_while_watched_is_removed_by_the_object(loop, direction):
    add = getattr(loop, f"add_{direction}")
    remove = getattr(loop, f"remove_{direction}")
    a, b = socket.socketpair()
    with b:
        a.setblocking(False)
        if direction == "writer":
            _unwritable(a)
        add(a, print)
        a.close()
        # fileno() is -1 now; the registration made for `a` is still found through it.
        assert remove(a) is True
        with pytest.raises(ValueError, match=r"^Invalid file descriptor: -1$"):
            remove(a)  # and, once removed, it is not


@pytest.mark.parametrize("direction", ["reader", "writer"])
def test_waiter_cleans_up_after_another_task_closed_its_socket(loop, direction):
    # The waiter's done callback removes its registration by the socket object, which
    # another task has closed meanwhile (anyio's wait_readable and aclose do this).
    add = getattr(loop, f"add_{direction}")
    remove = getattr(loop, f"remove_{direction}")
    ran = []

    async def main():
        a, b = socket.socketpair()
        with b:
            a.setblocking(False)
            if direction == "writer":
                _unwritable(a)
            ready = loop.create_future()
            add(a, ran.append, "stale callback")
            ready.add_done_callback(lambda _: ran.append(remove(a)))

            async def close_it():
                a.close()
                ready.set_result(None)

            await asyncio.gather(ready, close_it())
            # The fd number goes to the next socket, which must not wake the old callback.
            c, d = socket.socketpair()
            with c, d:
                d.send(b"x")
                for _ in range(3):
                    await asyncio.sleep(0)

    loop.run_until_complete(main())
    assert ran == [True]


def test_removed_registration_does_not_keep_its_file_object_alive(loop):
    a, b = socket.socketpair()
    with b:
        loop.add_reader(a, print)
        loop.add_writer(a, print)
        assert loop.remove_reader(a) is True
        assert loop.remove_writer(a) is True
        a.close()
        gone = weakref.ref(a)
        del a
        assert gone() is None
