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


# Work `unstoppable` keeps going after its caller is cancelled, until it ends.
_KEPT: set[asyncio.Future[Any]] = set()


async def unstoppable(work: Coroutine[Any, Any, T]) -> T:
    """Await `work` as a task of its own that goes on to its end if the caller is
    cancelled: a publish an execution made before its deadline is on its way, and the
    functions it triggers run to their own ends, as on PubNub."""
    import asyncio

    task = asyncio.ensure_future(work)
    _KEPT.add(task)
    task.add_done_callback(_KEPT.discard)
    return await asyncio.shield(task)


async def kept_done() -> None:
    """Wait for what `unstoppable` kept going on this loop (or the side loop, in a
    loop-free drive): each is bounded by the deadlines of the executions it runs."""
    if not _KEPT:
        return
    import asyncio

    loop = running_loop() or _SideLoop.loop
    pending = [task for task in _KEPT if task.get_loop() is loop]
    if not pending or loop is None:
        return
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
