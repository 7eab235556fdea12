"""A first asyncio program: tasks, timers, a TaskGroup, sockets and a signal.

Nothing here is specific to looplet: the same file runs on any event loop, and its
first line says which one ran it.

    python examples/hello.py               # on stock asyncio
    python -m looplet examples/hello.py    # on looplet
"""

import asyncio
import os
import signal
import socket


async def greet(name: str, delay: float) -> str:
    await asyncio.sleep(delay)
    print(f"  {name} is ready")
    return f"Hello, {name}!"


async def main() -> None:
    loop = asyncio.get_running_loop()
    print(f"Running on {type(loop).__module__}.{type(loop).__qualname__}")

    # A TaskGroup runs tasks concurrently and waits for all of them.
    # The shorter sleep finishes first, whatever the order of creation.
    print("Greeting concurrently:")
    async with asyncio.TaskGroup() as tg:
        slow = tg.create_task(greet("world", 0.02))
        fast = tg.create_task(greet("asyncio", 0.01))
    print(slow.result(), fast.result())

    # A timer: call a function later, here to complete a future.
    rang = loop.create_future()
    loop.call_later(0.01, rang.set_result, "ding")
    print("The timer says:", await rang)

    # Sockets: both ends of a socketpair, driven by the loop.
    left, right = socket.socketpair()
    with left, right:
        left.setblocking(False)
        right.setblocking(False)
        await loop.sock_sendall(left, b"ping")
        request = await loop.sock_recv(right, 100)
        await loop.sock_sendall(right, request.replace(b"i", b"o"))
        print("Sent ping, got", (await loop.sock_recv(left, 100)).decode())

    # A signal: the handler runs on the loop like any other callback.
    caught = loop.create_future()
    loop.add_signal_handler(signal.SIGUSR1, caught.set_result, "SIGUSR1")
    try:
        os.kill(os.getpid(), signal.SIGUSR1)
        print("Caught", await caught)
    finally:
        loop.remove_signal_handler(signal.SIGUSR1)

    print("Goodbye!")


if __name__ == "__main__":
    asyncio.run(main())
