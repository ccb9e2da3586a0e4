"""Waiting out another process's write lock on the store's file (a `pfunc kv` command, a
second `pfunc run`, a SQLite browser), for the store's plain connection (store.py).

Each statement first runs on the plain sqlite3 connection with no busy wait (WAL readers
never block, so it only fails when another process holds the write lock); on SQLITE_BUSY
it is retried here. In the dev server the wait happens on aiosqlite's thread, so that its
loop stays free for other requests; elsewhere (the command line, `pfunc test`) there is
nothing to keep free, and the plain connection waits itself, in slices between which
Ctrl-C is heard. Either way the wait ends with the calling execution's time
(CALL_DEADLINE), so that nothing commits after an execution has ended as a timeout.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pfunc.aio import settled

if TYPE_CHECKING:
    import asyncio

    import aiosqlite

T = TypeVar("T")
Statements = list[tuple[str, tuple[Any, ...]]]

BUSY_TIMEOUT_MS = 10_000
_WAIT_SLICE_MS = 50  # a loop-free wait for the lock checks for Ctrl-C this often
# When the execution a call is made for runs out of time (time.monotonic(); set by the
# execution loop); None outside executions (the REST API, `pfunc kv`).
CALL_DEADLINE: ContextVar[float | None] = ContextVar("pfunc_call_deadline", default=None)


def commit_or_roll_back(conn: sqlite3.Connection, write: Callable[[], None]) -> None:
    """In a transaction `conn` has begun: `write()`, then COMMIT; on any error, ROLLBACK
    and raise it. Not when SQLite rolled back itself (after a full disk, say): the
    ROLLBACK's own "no transaction is active" would hide the cause."""
    try:
        write()
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def switch_to_wal(conn: sqlite3.Connection) -> None:
    """PRAGMA journal_mode=WAL on a file other processes may be opening at this moment.
    While another connection holds the file's write lock SQLite refuses the switch at
    once, without its busy wait (waiting could deadlock): four processes opening one new
    store at once met it in ~1 open of 15. Tried again until BUSY_TIMEOUT_MS."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if not busy(error) or time.monotonic() > deadline:
                raise
        time.sleep(0.005)


def lock_wait_ms() -> int:
    """How long a statement may wait for another process's write lock."""
    deadline = CALL_DEADLINE.get()
    if deadline is None:
        return BUSY_TIMEOUT_MS
    return max(0, min(BUSY_TIMEOUT_MS, int((deadline - time.monotonic()) * 1000)))


@contextlib.asynccontextmanager
async def _turn_of(turn: asyncio.Lock) -> AsyncIterator[None]:
    """The slow connection's turn, waited for no longer than the lock itself may be (the
    calling execution's time): the calls before it wait out theirs one after the other,
    and an execution behind two of them ran 30 s past its 10 s limit."""
    import asyncio

    if turn.locked():  # (a free one is taken at once: no timer, no task)
        try:
            await asyncio.wait_for(turn.acquire(), lock_wait_ms() / 1000)
        except TimeoutError:
            raise sqlite3.OperationalError("database is locked") from None
    else:
        await turn.acquire()
    try:
        yield
    finally:
        turn.release()


async def _in_time(slow: aiosqlite.Connection, statements: Statements) -> list[Any]:
    """The statements as one transaction on the slow connection (the rows of the last),
    committed only within the calling execution's time: one that took the lock as its
    execution ended as a timeout wrote after it. A wait cut short (the execution ended,
    a stop) still rolls back a BEGIN that takes the lock after it: the ROLLBACK queues
    behind it on the connection's thread."""
    import asyncio

    try:
        await slow.execute("BEGIN IMMEDIATE")
        rows: list[Any] = []
        for sql, params in statements:
            rows = list(await slow.execute_fetchall(sql, params))
        deadline = CALL_DEADLINE.get()
        if deadline is not None and time.monotonic() > deadline:
            raise sqlite3.OperationalError("database is locked")  # (as if it had not got it)
        await slow.execute("COMMIT")
        return rows
    except BaseException:
        with contextlib.suppress(sqlite3.Error):  # (none active: the BEGIN never got it)
            await asyncio.shield(slow.execute("ROLLBACK"))
        raise


def _opened(opening: asyncio.Future[Any]) -> bool:
    """Whether an opening of the slow connection has ended with the connection."""
    return opening.done() and not opening.cancelled() and opening.exception() is None


def busy(error: sqlite3.OperationalError) -> bool:
    """Another connection holds the lock this statement needs."""
    return "locked" in str(error) or "busy" in str(error)


class LockWaits:
    """The store's ways of waiting for the write lock: on its plain connection (no loop),
    or on an aiosqlite connection of its own, made on first contention."""

    def __init__(self, path: Path, fast: sqlite3.Connection, fast_lock: threading.Lock) -> None:
        self.path = path
        self._fast = fast
        self._fast_lock = fast_lock
        # Opened once, by the first call to meet the lock; the calls that meet it while
        # it opens wait for the same opening (two connections would leave one open, and
        # its thread would keep the process from exiting).
        self._opening: asyncio.Future[tuple[aiosqlite.Connection, asyncio.Lock]] | None = None
        # The loop that owns the aiosqlite connection; other threads' loops hop to it.
        self.home: asyncio.AbstractEventLoop | None = None
        # Whether a wait must leave the calling loop free (the dev server serves others
        # meanwhile); elsewhere the plain connection waits, and Ctrl-C is heard at once.
        self.keep_loop_free = False
        self._closed = False

    def waits_on_fast(self, loop_running: bool) -> bool:
        """Whether the plain connection waits for the lock itself: always but in the dev
        server, which has other requests to serve meanwhile. A command's wait on
        aiosqlite's thread went on after Ctrl-C for as long as the lock was held."""
        return not (loop_running and self.keep_loop_free)

    def on_fast(self, work: Callable[[], T]) -> T:
        """`work` on the plain connection, waiting for the lock as the slow one would
        (there is no event loop to keep free: see waits_on_fast). It waits in slices,
        so that Ctrl-C is heard between them."""
        deadline = time.monotonic() + lock_wait_ms() / 1000
        with self._fast_lock:
            self._fast.execute(f"PRAGMA busy_timeout={_WAIT_SLICE_MS}")
            try:
                while True:
                    try:
                        return work()
                    except sqlite3.OperationalError as error:
                        if not busy(error) or time.monotonic() >= deadline:
                            raise
            finally:
                with contextlib.suppress(sqlite3.Error):
                    self._fast.execute("PRAGMA busy_timeout=0")

    async def run(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        """One statement on the slow connection, off the loop. (Not a transaction checked
        before its COMMIT, as `transaction` is: the two more hops to aiosqlite's thread
        cost the publish benchmark 40% of its rate, the checkpoint taking the lock often.)"""

        async def statement() -> list[Any]:
            slow, turn = await self._connection()
            async with _turn_of(turn):
                await slow.execute(f"PRAGMA busy_timeout={lock_wait_ms()}")
                return list(await slow.execute_fetchall(sql, params))

        return await self._at_home(statement())

    async def transaction(self, statements: Statements) -> None:
        """Several statements as one transaction on the slow connection: all or none."""

        async def transaction() -> None:
            slow, turn = await self._connection()
            async with _turn_of(turn):
                await slow.execute(f"PRAGMA busy_timeout={lock_wait_ms()}")
                await _in_time(slow, statements)

        await self._at_home(transaction())

    async def close(self) -> None:
        self._closed = True  # no call opens it again
        opening = self._opening
        if opening is None:
            return
        # On the loop that opened it: in a loop-free drive, the side loop on which a
        # network or bus call met the lock (aio.py). One still opening is waited for, and
        # stays held until closed (a close cut short leaves it to the next close).
        if not opening.done():
            import asyncio

            await settled(asyncio.wait([opening]))  # (without raising what it failed with)
        if self._opening is opening:
            self._opening = None
            if _opened(opening):
                await settled(opening.result()[0].close())

    async def _at_home(self, work: Coroutine[Any, Any, T]) -> T:
        """Run `work` on the loop that owns the aiosqlite connection (the calling
        execution's deadline goes with it: the hop copies the context). Outside an
        execution (the REST API), the wait for the turn and the lock together ends after
        BUSY_TIMEOUT_MS, as one statement's would."""
        import asyncio

        own_deadline = None
        if CALL_DEADLINE.get() is None:
            own_deadline = CALL_DEADLINE.set(time.monotonic() + BUSY_TIMEOUT_MS / 1000)
        try:
            loop = asyncio.get_running_loop()
            if self.home is None or self.home is loop:
                return await work
            return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(work, self.home))
        finally:
            if own_deadline is not None:
                CALL_DEADLINE.reset(own_deadline)

    async def _connection(self) -> tuple[aiosqlite.Connection, asyncio.Lock]:
        import asyncio

        if self._closed:
            raise sqlite3.ProgrammingError("Cannot operate on a closed database.")
        opening = self._opening
        if opening is not None and _opened(opening):
            return opening.result()  # (open already: no shield to make)
        if opening is None or opening.done():
            # The first call to meet the lock, or the first since an opening failed.
            opening = self._opening = asyncio.ensure_future(self._open())
        # Shielded: a caller whose execution ends does not end the opening the others
        # wait for.
        return await asyncio.shield(opening)

    async def _open(self) -> tuple[aiosqlite.Connection, asyncio.Lock]:
        import asyncio

        import aiosqlite  # only needed once another process contends for the lock

        slow = await aiosqlite.connect(
            str(self.path), isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000
        )
        try:
            await slow.execute("PRAGMA synchronous=NORMAL")
        except BaseException:
            await slow.close()
            raise
        return slow, asyncio.Lock()  # one use of the slow connection at a time
