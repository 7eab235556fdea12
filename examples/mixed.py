"""One program mixing most of asyncio: a tiny word-count service.

Tasks and a TaskGroup, an asyncio.Queue, Lock/Event/Semaphore/Condition, a timeout,
blocking work in threads (asyncio.to_thread and run_in_executor), a signal sent to
ourselves, and sock_* I/O on a socketpair. The output is the same on every loop:

    python examples/mixed.py
    python -m looplet examples/mixed.py
    python -c "import asyncio, looplet, mixed; asyncio.run(mixed.main(), loop_factory=looplet.new_event_loop)"

Set LOOPLET_EXAMPLE_SHOW_LOOP=1 to also print which loop ran it.
"""

import asyncio
import os
import signal
import socket
import zlib

DOCUMENTS = {
    "poem": "the loop polls and the watches wake and the queue runs",
    "list": "eggs milk eggs bread",
    "motto": "poll wake run poll wake run",
}


def count_words(text: str) -> int:  # blocking work: runs in a thread
    return len(text.split())


async def worker(queue, results, lock, threads):
    while True:
        doc = await queue.get()
        async with threads:  # at most two jobs in threads at once
            words = await asyncio.to_thread(count_words, DOCUMENTS[doc])
            loop = asyncio.get_running_loop()
            crc = await loop.run_in_executor(None, zlib.crc32, DOCUMENTS[doc].encode())
        async with lock:
            results[doc] = (words, f"{crc:08x}")
        queue.task_done()


async def echo_server(sock):
    loop = asyncio.get_running_loop()
    while data := await loop.sock_recv(sock, 1024):
        await loop.sock_sendall(sock, data.upper())


async def main() -> None:
    loop = asyncio.get_running_loop()
    if os.environ.get("LOOPLET_EXAMPLE_SHOW_LOOP"):
        print(f"loop: {type(loop).__module__}")

    # 1. A queue feeding three workers, under a TaskGroup.
    queue: asyncio.Queue[str] = asyncio.Queue(maxsize=2)
    results: dict[str, tuple[int, str]] = {}
    lock, threads = asyncio.Lock(), asyncio.Semaphore(2)
    async with asyncio.TaskGroup() as tg:
        workers = [tg.create_task(worker(queue, results, lock, threads)) for _ in range(3)]
        for doc in DOCUMENTS:
            await queue.put(doc)
        await queue.join()
        for w in workers:
            w.cancel()
    for doc, (words, crc) in sorted(results.items()):
        print(f"{doc}: {words} words, crc32 {crc}")

    # 2. An Event and a Condition: one task waits for another's go-ahead.
    ready, cond, state = asyncio.Event(), asyncio.Condition(), []

    async def waiter():
        await ready.wait()
        async with cond:
            await cond.wait_for(lambda: len(state) == 3)
            return "+".join(state)

    async def filler():
        ready.set()
        for item in ("a", "b", "c"):
            async with cond:
                state.append(item)
                cond.notify_all()
            await asyncio.sleep(0)

    joined, _ = await asyncio.gather(waiter(), filler())
    print("condition met:", joined)

    # 3. A timeout: the slow step is cancelled, the program goes on.
    try:
        async with asyncio.timeout(0.05):
            await asyncio.sleep(3600)
    except TimeoutError:
        print("slow step timed out")

    # 4. A signal sent to ourselves, handled on the loop.
    got_signal = asyncio.Event()
    loop.add_signal_handler(signal.SIGUSR1, got_signal.set)
    try:
        os.kill(os.getpid(), signal.SIGUSR1)
        await got_signal.wait()
        print("got SIGUSR1")
    finally:
        loop.remove_signal_handler(signal.SIGUSR1)

    # 5. Socket I/O: an echo task at one end of a socketpair.
    client, server = socket.socketpair()
    with client, server:
        client.setblocking(False)
        server.setblocking(False)
        echo = asyncio.create_task(echo_server(server))
        for line in (b"hello", b"looplet"):
            await loop.sock_sendall(client, line)
            print("echo:", (await loop.sock_recv(client, 1024)).decode())
        client.shutdown(socket.SHUT_WR)
        await echo

    print("done")


if __name__ == "__main__":
    asyncio.run(main())
