"""The event loop where pfunc's async code needs one, and the loop-free drive that the
command line uses instead of `asyncio.run`.

Importing asyncio costs about 25 ms (ssl, sockets, logging, concurrent.futures), a fifth
of a cold `pfunc run`, yet one execution of a handler that calls only local modules (the
KV store, crypto, vault) never waits on anything: SQLite and QuickJS are synchronous
underneath, so each coroutine completes as soon as it is stepped. `run_without_loop`
steps it with no event loop, and asyncio is not imported. Network and bus calls (xhr,
pubnub) do wait: their tasks are started on a private event loop that runs only while
the execution waits for them, so they keep their concurrency and deadlines.

The execution path (execution_loop.py, executor.py, engine.py, store.py) reaches
asyncio only through this module, so the choice is made in one place.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Coroutine, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import asyncio

T = TypeVar("T")


class _SideLoop:
    """The private event loop of a loop-free drive, made when a call first waits."""

    loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def get(cls) -> asyncio.AbstractEventLoop:
        if cls.loop is None:
            import asyncio

            cls.loop = asyncio.new_event_loop()
        return cls.loop

    @classmethod
    def close(cls) -> None:
        """Cancel what is still pending (an unawaited call at the end), as asyncio.run does."""
        loop, cls.loop = cls.loop, None
        if loop is None:
            return
        import asyncio

        try:
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()


def running_loop() -> asyncio.AbstractEventLoop | None:
    """The event loop running this code; None in a loop-free drive."""
    asyncio = sys.modules.get("asyncio")
    return None if asyncio is None else asyncio._get_running_loop()


def run_without_loop(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run `coroutine` to its end on this thread without an event loop (see above)."""
    try:
        while True:
            waited_on = coroutine.send(None)
            if waited_on is not None:  # a bare yield (sleep(0)) just passes the turn
                coroutine.close()
                raise RuntimeError(
                    f"pfunc's loop-free drive was asked to wait on {waited_on!r}; this is a "
                    "bug in pfunc: such work belongs on start_task()"
                )
    except StopIteration as done:
        return done.value
    finally:
        _SideLoop.close()


def run_on_new_loop(main: Coroutine[Any, Any, T]) -> T:
    """asyncio.run(main), its result handed over outside the task. Python 3.11's
    asyncio.run puts Ctrl-C's handler back through signal.getsignal, which words repr()
    of the handler it set, a partial holding the finished task, and so repr() of the
    task's result, in full, twice: a scenario's result of 10 steps took 0.2 ms of it, one
    of 3,000 steps 60 ms."""
    import asyncio

    box: list[T] = []

    async def keep() -> None:
        box.append(await main)

    asyncio.run(keep())
    return box[0]


def start_task(
    work: Coroutine[Any, Any, T], home: asyncio.AbstractEventLoop | None = None
) -> asyncio.Future[T]:
    """Run `work` concurrently: on `home` when that is another thread's loop, else on
    this one (the side loop in a loop-free drive)."""
    loop = running_loop()
    if loop is None:
        return _SideLoop.get().create_task(work)
    import asyncio

    if home is None or home is loop:
        return asyncio.ensure_future(work)
    return asyncio.wrap_future(asyncio.run_coroutine_threadsafe(work, home))


# Work `start_kept` started, kept until it ends (nothing else may hold its tasks).
_KEPT: set[asyncio.Future[Any]] = set()


def start_kept(
    work: Coroutine[Any, Any, T], home: asyncio.AbstractEventLoop | None = None
) -> asyncio.Future[T]:
    """Start `work` now as a task of its own, as start_task does, that goes on to its end
    whatever becomes of the future returned for it: a publish an execution made is on its
    way even if the execution is cancelled at its deadline (even before the task's first
    step), and the functions it triggers run to their own ends, as on PubNub."""
    import asyncio
    import concurrent.futures

    loop = running_loop()
    if loop is None or home is None or home is loop:
        here = loop or _SideLoop.get()
        task = here.create_task(work)
        _keep(task)
        answer: asyncio.Future[T] = here.create_future()
        task.add_done_callback(lambda done: _pass_on(done, answer))
        return answer
    crossing: concurrent.futures.Future[T] = concurrent.futures.Future()

    def begin() -> None:
        task = home.create_task(work)
        _keep(task)
        task.add_done_callback(lambda done: _pass_on(done, crossing))

    home.call_soon_threadsafe(begin)
    return asyncio.wrap_future(crossing)


def _keep(task: asyncio.Future[Any]) -> None:
    _KEPT.add(task)
    task.add_done_callback(_KEPT.discard)


def _pass_on(done: asyncio.Future[Any], answer: Any) -> None:
    """`done`'s outcome to `answer` (an asyncio or concurrent future), unless nobody waits."""
    if answer.cancelled() or answer.done():
        return
    if done.cancelled():
        answer.cancel()
    elif done.exception() is not None:
        answer.set_exception(done.exception())
    else:
        answer.set_result(done.result())


async def kept_done() -> None:
    """Wait for what `start_kept` started on this loop (or the side loop, in a loop-free
    drive), and for what those start in turn: each is bounded by the deadlines of the
    executions it runs."""
    loop = running_loop() or _SideLoop.loop
    while loop is not None:
        pending = [task for task in _KEPT if task.get_loop() is loop and not task.done()]
        if not pending:
            return
        import asyncio  # (only once something was kept: a local run never imports it)

        if running_loop() is None:
            loop.run_until_complete(asyncio.wait(pending))
        else:
            await asyncio.wait(pending)


async def first_done(
    tasks: Iterable[asyncio.Future[Any]], timeout: float | None
) -> set[asyncio.Future[Any]]:
    """The tasks done once one of them is, or none if `timeout` seconds pass first."""
    import asyncio

    waiting = asyncio.wait(tasks, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    if running_loop() is None:
        done, _ = _SideLoop.get().run_until_complete(waiting)
    else:
        done, _ = await waiting
    return done


async def settled(work: Awaitable[T]) -> T:
    """Await `work`; in a loop-free drive, on the side loop (a module's close, whose
    connections were opened there)."""
    if running_loop() is None and _SideLoop.loop is not None:
        return _SideLoop.loop.run_until_complete(work)
    return await work


async def pass_turn() -> None:
    """Let the loop serve others before going on."""
    import asyncio

    await asyncio.sleep(0)
