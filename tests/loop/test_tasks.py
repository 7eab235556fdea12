"""Futures, tasks and the running-loop bookkeeping.

Covers create_future, create_task (names, `context=`, non-coroutines), the task
factory (set/get, errors, `context=` forwarding, 3.12+ `asyncio.eager_task_factory`
running a task synchronously until its first suspension), asyncio's high-level
primitives driven by the loop (gather, wait_for, timeout, shield, TaskGroup,
cancellation), no finished task kept alive by the loop's own frames, Future done
callbacks, `asyncio.get_running_loop()` / `asyncio.current_task()` / `all_tasks()`,
and async generators: the loop's firstiter/finalizer hooks, finalization of generators
that are garbage-collected while the loop runs, `shutdown_asyncgens()` (including
errors in aclose and the warning for generators started after it), and asyncio.Runner
finalizing unfinished generators at exit.

Also the bad-input cases of create_task and set_task_factory (tests/bad_input.py).
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
import sys

import pytest
from bad_input import pytest_generate_tests, test_bad_input_fails_as_on_asyncio  # noqa: F401

var = contextvars.ContextVar("var", default="default")


def test_create_future(loop):
    fut = loop.create_future()
    assert isinstance(fut, asyncio.Future)
    assert fut.get_loop() is loop
    assert not fut.done()
    fut.cancel()


def test_create_task_runs_the_coroutine(loop):
    async def work():
        await asyncio.sleep(0)
        return "result"

    task = loop.create_task(work())
    assert isinstance(task, asyncio.Task)
    assert task.get_loop() is loop
    assert not task.done()
    assert loop.run_until_complete(task) == "result"
    assert task.done()


def test_create_task_name(loop):
    async def work():
        return asyncio.current_task().get_name()

    named = loop.create_task(work(), name="worker-1")
    unnamed = loop.create_task(work())
    assert named.get_name() == "worker-1"
    assert unnamed.get_name().startswith("Task-")
    assert loop.run_until_complete(named) == "worker-1"
    loop.run_until_complete(unnamed)


def test_create_task_context(loop):
    ctx = contextvars.copy_context()
    ctx.run(var.set, "task ctx")

    async def work():
        before = var.get()
        var.set("changed inside")
        await asyncio.sleep(0)
        return before, var.get()

    assert loop.run_until_complete(loop.create_task(work(), context=ctx)) == ("task ctx", "changed inside")
    # The task ran in ctx itself, not a copy of it.
    assert ctx[var] == "changed inside"
    assert var.get() == "default"


def test_create_task_not_a_coroutine_is_type_error(loop):
    with pytest.raises(TypeError, match=r"a coroutine was expected"):
        loop.create_task(42)


def test_task_factory_set_and_get(loop):
    calls = []

    def factory(lp, coro, **kwargs):
        calls.append((lp, sorted(kwargs)))
        return asyncio.Task(coro, loop=lp, **kwargs)

    assert loop.get_task_factory() is None
    loop.set_task_factory(factory)
    assert loop.get_task_factory() is factory

    async def work():
        return var.get()

    ctx = contextvars.copy_context()
    ctx.run(var.set, "factory ctx")
    t1 = loop.create_task(work(), name="named")
    t2 = loop.create_task(work(), context=ctx)
    assert t1.get_name() == "named"
    assert loop.run_until_complete(t1) == "default"
    assert loop.run_until_complete(t2) == "factory ctx"
    # From 3.14, create_task hands every keyword to the factory, name included.
    named = ["name"] if sys.version_info >= (3, 14) else []
    assert calls == [(loop, named), (loop, ["context"])]

    loop.set_task_factory(None)
    assert loop.get_task_factory() is None
    loop.run_until_complete(loop.create_task(work()))
    assert len(calls) == 2


@pytest.mark.skipif(
    sys.version_info[:3] == (3, 13, 0),
    reason="3.13.0's create_task names a factory's task 'None' when no name is given",
)
def test_task_factory_without_name_keeps_the_factorys_name(loop):
    loop.set_task_factory(lambda lp, coro: asyncio.Task(coro, loop=lp, name="from-factory"))

    async def work():
        pass

    task = loop.create_task(work())
    assert task.get_name() == "from-factory"
    loop.run_until_complete(task)


def test_task_factory_not_callable_is_type_error(loop):
    with pytest.raises(TypeError, match=r"^task factory must be a callable or None$"):
        loop.set_task_factory(1)
    assert loop.get_task_factory() is None


@pytest.mark.skipif(sys.version_info < (3, 12), reason="asyncio.eager_task_factory is new in 3.12")
def test_eager_task_factory_runs_synchronously_until_first_suspension(loop):
    loop.set_task_factory(asyncio.eager_task_factory)
    assert loop.get_task_factory() is asyncio.eager_task_factory
    order = []

    async def suspends():
        order.append("started")
        await asyncio.sleep(0)
        order.append("resumed")
        return "suspended result"

    async def never_suspends():
        order.append("sync body")
        return "sync result"

    async def main():
        sync_task = loop.create_task(never_suspends())
        # Completed inside create_task: no tick was needed.
        assert sync_task.done()
        assert sync_task.result() == "sync result"
        task = loop.create_task(suspends())
        order.append("after create_task")
        assert not task.done()
        return await task

    assert loop.run_until_complete(main()) == "suspended result"
    assert order == ["sync body", "started", "after create_task", "resumed"]


@pytest.mark.skipif(sys.version_info < (3, 12), reason="asyncio.eager_task_factory is new in 3.12")
def test_eager_task_current_task_and_running_loop(loop):
    loop.set_task_factory(asyncio.eager_task_factory)
    seen = []

    async def child():
        seen.append(("child", asyncio.current_task(), asyncio.get_running_loop() is loop))
        await asyncio.sleep(0)
        seen.append(("child", asyncio.current_task(), asyncio.get_running_loop() is loop))

    async def main():
        parent = asyncio.current_task()
        task = loop.create_task(child())
        seen.append(("parent", asyncio.current_task() is parent, True))
        await task
        return parent, task

    parent, task = loop.run_until_complete(main())
    assert seen == [("child", task, True), ("parent", True, True), ("child", task, True)]
    assert parent is not task


def test_running_loop_and_current_task_inside_tasks(loop):
    seen = []

    async def work(n):
        seen.append((n, asyncio.get_running_loop() is loop, asyncio.current_task().get_name()))
        await asyncio.sleep(0)
        seen.append((n, asyncio.get_running_loop() is loop, asyncio.current_task().get_name()))

    async def main():
        await asyncio.gather(loop.create_task(work(1), name="one"), loop.create_task(work(2), name="two"))
        return asyncio.current_task()

    main_task = loop.create_task(main())
    assert loop.run_until_complete(main_task) is main_task
    assert sorted(seen) == [(1, True, "one"), (1, True, "one"), (2, True, "two"), (2, True, "two")]


def test_current_task_and_running_loop_outside_tasks(loop):
    seen = []

    def callback():
        seen.append((asyncio.get_running_loop() is loop, asyncio.current_task(), asyncio.current_task(loop)))
        loop.stop()

    loop.call_soon(callback)
    loop.run_forever()
    assert seen == [(True, None, None)]
    with pytest.raises(RuntimeError, match=r"no running event loop"):
        asyncio.get_running_loop()
    assert asyncio.current_task(loop) is None


def test_all_tasks(loop):
    async def sleeper(fut):
        await fut

    async def main():
        fut = loop.create_future()
        tasks = [loop.create_task(sleeper(fut)) for _ in range(3)]
        await asyncio.sleep(0)
        current = asyncio.all_tasks()
        fut.set_result(None)
        await asyncio.gather(*tasks)
        me = asyncio.current_task()
        return current, set(tasks) | {me}, asyncio.all_tasks(), me

    current, expected, after, me = loop.run_until_complete(main())
    assert current == expected
    assert after == {me}
    assert asyncio.all_tasks(loop) == set()


def test_future_done_callbacks_run_in_order_with_context(loop):
    fut = loop.create_future()
    order = []
    ctx = contextvars.copy_context()
    ctx.run(var.set, "cb ctx")
    fut.add_done_callback(lambda f: order.append(("first", f.result(), var.get())))
    fut.add_done_callback(lambda f: order.append(("second", f.result(), var.get())), context=ctx)
    fut.set_result(5)
    assert order == []  # callbacks are scheduled, not called inline
    loop.run_until_complete(asyncio.sleep(0))
    assert order == [("first", 5, "default"), ("second", 5, "cb ctx")]


def test_task_cancellation(loop):
    events = []

    async def victim():
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            events.append("cancelled")
            raise

    async def main():
        task = loop.create_task(victim())
        await asyncio.sleep(0)
        task.cancel("why")
        with pytest.raises(asyncio.CancelledError):
            await task
        return task

    task = loop.run_until_complete(main())
    assert task.cancelled()
    assert events == ["cancelled"]


def test_sleep_zero_interleaves_tasks_round_robin(loop):
    order = []

    async def step(name):
        for i in range(3):
            order.append(f"{name}{i}")
            await asyncio.sleep(0)

    async def main():
        await asyncio.gather(step("a"), step("b"), step("c"))

    loop.run_until_complete(main())
    assert order == ["a0", "b0", "c0", "a1", "b1", "c1", "a2", "b2", "c2"]


def test_high_level_primitives(loop):
    async def value(x, delay=0):
        await asyncio.sleep(delay)
        return x

    async def main():
        results = {}
        results["gather"] = await asyncio.gather(value(1), value(2, 0.001), value(3))
        results["wait_for"] = await asyncio.wait_for(value("w"), timeout=30)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(value("slow", 3600), timeout=0.001)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.001):
                await asyncio.sleep(3600)
        inner = loop.create_task(value("shielded", 0.001))
        results["shield"] = await asyncio.shield(inner)
        done, pending = await asyncio.wait([loop.create_task(value(i)) for i in range(3)])
        results["wait"] = sorted(t.result() for t in done), pending
        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(value(i, 0.001 * (3 - i))) for i in range(3)]
        results["taskgroup"] = [t.result() for t in tasks]
        results["as_completed"] = [await f for f in asyncio.as_completed([value("a", 0.002), value("b")])]
        return results

    assert loop.run_until_complete(main()) == {
        "gather": [1, 2, 3],
        "wait_for": "w",
        "shield": "shielded",
        "wait": ([0, 1, 2], set()),
        "taskgroup": [0, 1, 2],
        "as_completed": ["b", "a"],
    }


def test_taskgroup_error_cancels_siblings(loop):
    cancelled = []

    async def sibling():
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    async def failing():
        await asyncio.sleep(0)
        raise ValueError("fail")

    async def main():
        async with asyncio.TaskGroup() as tg:
            tg.create_task(sibling())
            tg.create_task(failing())

    with pytest.raises(ExceptionGroup) as info:
        loop.run_until_complete(main())
    assert [type(e) for e in info.value.exceptions] == [ValueError]
    assert cancelled == [True]


# -- async generators ------------------------------------------------------------------


def test_asyncgen_hooks_installed_only_while_running(loop):
    outside = sys.get_asyncgen_hooks()

    async def main():
        return sys.get_asyncgen_hooks()

    inside = loop.run_until_complete(main())
    assert inside.firstiter is not None
    assert inside.finalizer is not None
    assert inside != outside
    assert sys.get_asyncgen_hooks() == outside


def _make_agen(log, name):
    async def agen():
        try:
            yield 1
            yield 2
        finally:
            log.append(f"{name} finalized")

    return agen()


def test_shutdown_asyncgens_finalizes_unfinished_generators(loop):
    log = []
    keep = []

    async def main():
        for name in ("g1", "g2"):
            gen = _make_agen(log, name)
            keep.append(gen)
            assert await gen.__anext__() == 1

    loop.run_until_complete(main())
    assert log == []
    loop.run_until_complete(loop.shutdown_asyncgens())
    assert sorted(log) == ["g1 finalized", "g2 finalized"]


def test_shutdown_asyncgens_with_no_generators(loop):
    loop.run_until_complete(loop.shutdown_asyncgens())


def test_shutdown_asyncgens_reports_errors_in_aclose(loop):
    contexts = []
    loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))
    keep = []

    async def bad_agen():
        try:
            yield 1
        finally:
            raise ZeroDivisionError("in aclose")

    async def main():
        gen = bad_agen()
        keep.append(gen)
        await gen.__anext__()

    loop.run_until_complete(main())
    loop.run_until_complete(loop.shutdown_asyncgens())
    assert len(contexts) == 1
    ctx = contexts[0]
    assert ctx["message"].startswith("an error occurred during closing of asynchronous generator")
    assert isinstance(ctx["exception"], ZeroDivisionError)
    assert ctx["asyncgen"] is keep[0]


def test_asyncgen_started_after_shutdown_asyncgens_warns(loop):
    loop.run_until_complete(loop.shutdown_asyncgens())
    log = []

    async def main():
        gen = _make_agen(log, "late")
        with pytest.warns(ResourceWarning, match=r"was scheduled after loop.shutdown_asyncgens"):
            await gen.__anext__()
        await gen.aclose()

    loop.run_until_complete(main())
    assert log == ["late finalized"]


def test_asyncgen_garbage_collected_while_running_is_finalized(loop):
    log = []

    async def main():
        gen = _make_agen(log, "dropped")
        await gen.__anext__()
        del gen
        gc.collect()
        # The finalizer hook schedules aclose() on the loop: a few ticks finish it.
        for _ in range(10):
            if log:
                break
            await asyncio.sleep(0)
        return list(log)

    assert loop.run_until_complete(main()) == ["dropped finalized"]


def test_runner_finalizes_unfinished_asyncgens(loop_factory, leakcheck):
    log = []
    keep = []

    async def main():
        gen = _make_agen(log, "runner")
        keep.append(gen)
        await gen.__anext__()
        return "main done"

    with asyncio.Runner(loop_factory=loop_factory) as runner:
        assert runner.run(main()) == "main done"
        assert log == []
    assert log == ["runner finalized"]


@pytest.mark.skipif(sys.version_info < (3, 12), reason="asyncio.run(loop_factory=...) is new in 3.12")
def test_asyncio_run_finalizes_unfinished_asyncgens(loop_factory, leakcheck):
    log = []
    keep = []

    async def main():
        gen = _make_agen(log, "run")
        keep.append(gen)
        await gen.__anext__()
        return "main done"

    assert asyncio.run(main(), loop_factory=loop_factory) == "main done"
    assert log == ["run finalized"]


@pytest.mark.parametrize("debug", [False, True], ids=["", "debug"])
def test_loop_frames_keep_no_finished_task_alive(loop, debug):
    # The coroutine that raised keeps its frame (its exception's traceback holds it), and
    # a frame that outlives its call is linked to its caller's frame: the loop's tick,
    # whose locals must not hold the task's handle, its task, and so the exception.
    class Done(Exception):
        pass

    async def fail():
        raise Done

    async def main():
        exc = None
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(fail())
        except* Done as excs:
            exc = excs.exceptions[0]
        return [r for r in gc.get_referrers(exc) if isinstance(r, asyncio.Task)]

    loop.set_debug(debug)
    assert loop.run_until_complete(main()) == []
