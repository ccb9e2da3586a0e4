"""The KV store on SQLite: item and counter key spaces per keyset, with expiry.

This layer knows nothing of limits or error wording (that is modules/kvstore.py);
it stores JSON text and integers, and every operation is a single SQL statement in
autocommit mode, so an acknowledged write is committed and a failed one wrote nothing.

Why a plain connection first: a hop to a worker thread costs ~80 us on the target
machine, while an uncontended SQLite statement costs 3-20 us. Statements run on a plain
sqlite3 connection with no busy wait; only when another process holds the write lock
do they wait, as store_contention.py says.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from functools import cache
from pathlib import Path
from typing import Any

from pfunc.aio import running_loop
from pfunc.checkpoints import BACKSTOP_PAGES, Checkpointer
from pfunc.numbers import fits_counter
from pfunc.store_contention import (
    BUSY_TIMEOUT_MS,
    LockWaits,
    Statements,
    busy,
    commit_or_roll_back,
    switch_to_wal,
)
from pfunc.store_schema import (
    APPLICATION_ID,
    FIRST_COLUMNS,
    OUR_TABLES,
    SCHEMA,
    add_columns,
    bring_up_to_date,
    lacked_columns,
)

# Above every key: SQLite sorts any text before any BLOB. (Two U+10FFFF were used before,
# and the keys that start with them fell outside every listing and export.)
_TOP = b""


def key_range(prefix: str, after: str | None = None) -> tuple[str, str | bytes]:
    """[low, high) on keys for `prefix`: the keys that start with it sort in this range
    (SQLite compares text by its UTF-8 bytes, which orders as code points do)."""
    high: str | bytes = _TOP
    stem = prefix
    while stem:
        last = ord(stem[-1])
        if last < 0x10FFFF:
            high = stem[:-1] + chr(last + 1 if last + 1 not in range(0xD800, 0xE000) else 0xE000)
            break
        stem = stem[:-1]
    low = prefix
    if after is not None and after >= low:
        low = after + "\x00"  # the smallest key after `after`
    return low, high


STATE_FOLDER = ".pfunc"  # the project's own state (the store, files): made when missing
_CHOOSE = "with --kv (or kv under [project] in pfunc.toml)"  # where a store path is set


class CounterOverflow(ValueError):
    """A counter would pass what a 64-bit integer holds; nothing was written."""


class StoreOpenError(Exception):
    """The KV file cannot be created or opened; the message names the path."""


class StoreCorruptError(Exception):
    """The store's file is damaged; the message names the path and what to do."""


def _is_ours(conn: sqlite3.Connection, path: Path) -> bool:
    """Whether the file already carries pfunc's mark; raise StoreOpenError unless it is
    empty, new, or a pfunc store. Reads only."""
    (application_id,) = conn.execute("PRAGMA application_id").fetchone()
    if application_id == APPLICATION_ID:
        return True
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    # A store from before the mark has only pfunc's tables, with pfunc's columns (another
    # program's "items" table is not ours); an empty file has none.
    if application_id == 0 and tables <= OUR_TABLES and _our_columns(conn, tables):
        return False
    raise StoreOpenError(
        f"{path} is not a pfunc KV store (it holds tables {', '.join(sorted(tables)) or 'none'}"
        f"{'' if application_id == 0 else f' and application id {application_id}'}); it was "
        f"left unchanged. Pass another file {_CHOOSE}."
    )


def _our_columns(conn: sqlite3.Connection, tables: set[str]) -> bool:
    """Whether each table has at least the columns pfunc's schema first gave it."""
    for table in tables:
        present = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        if not FIRST_COLUMNS.get(table, set()) <= present:
            return False
    return True


_memory_template: sqlite3.Connection | None = None
_template_lock = threading.Lock()
# Stores in memory closed and emptied, for the next scenario: a connection kept keeps its
# parsed schema and prepared statements, which a new copy of the template pays for again
# on its first statements (~110 us a scenario, against ~15 us to empty the tables).
_idle_memory: list[sqlite3.Connection] = []
_IDLE_MEMORY_KEPT = 4


def _fresh_memory() -> sqlite3.Connection:
    """An empty store in memory (a scenario's): one emptied after an earlier scenario, or
    a copy of a template that has the schema (20x quicker than creating the tables)."""
    global _memory_template
    with _template_lock:
        if _idle_memory:
            return _idle_memory.pop()
        if _memory_template is None:
            _memory_template = sqlite3.connect(":memory:", check_same_thread=False)
            _memory_template.executescript(SCHEMA)
            add_columns(_memory_template)
            _memory_template.execute(f"PRAGMA application_id={APPLICATION_ID}")
        conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        _memory_template.backup(conn)
    return conn


@cache
def _closed_connection() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:", check_same_thread=False)
    conn.close()
    return conn


def _keep_memory(conn: sqlite3.Connection, changes_when_fresh: int) -> None:
    """A closed store in memory, emptied and kept for the next scenario; closed instead
    if it cannot be emptied, or enough are kept."""
    try:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        if conn.total_changes != changes_when_fresh:  # written to: empty it again
            for table in OUR_TABLES:
                conn.execute(f"DELETE FROM {table}")
    except sqlite3.Error:
        conn.close()
        return
    with _template_lock:
        if len(_idle_memory) < _IDLE_MEMORY_KEPT:
            _idle_memory.append(conn)
            return
    conn.close()


class KVStore:
    def __init__(self, path: Path, fast: sqlite3.Connection) -> None:
        self.path = path
        self._fast = fast
        # Dev-server executions run on threads of their own: one statement at a time.
        self._fast_lock = threading.Lock()
        self.lock_waits = LockWaits(path, fast, self._fast_lock)
        self._checkpointer: Checkpointer | None = None
        self._changes_when_fresh = fast.total_changes  # for a store in memory's reuse

    @classmethod
    def open(cls, path: Path | str) -> KVStore:
        path = Path(path)
        if str(path) == ":memory:":
            return cls(path, _fresh_memory())
        if path.exists() and not path.is_file():  # /dev/null would get a journal beside it
            raise StoreOpenError(
                f"{path} is not a regular file; pass a file path for the KV store {_CHOOSE}"
            )
        try:
            if path.parent.name == STATE_FOLDER:  # pfunc's own folder; any other must exist
                path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                str(path), isolation_level=None, check_same_thread=False, timeout=0
            )
            # Schema set-up may race with other processes starting at the same moment:
            # wait for the lock here (start-up), then switch to the no-wait fast path.
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            marked = _is_ours(conn, path)  # before anything writes to it
            switch_to_wal(conn)
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(SCHEMA)
            if not marked or lacked_columns(conn):  # (a store up to date: no lock taken)
                bring_up_to_date(conn, marked)
            conn.execute("PRAGMA busy_timeout=0")
        except StoreOpenError:
            raise
        except (sqlite3.DatabaseError, OSError) as error:
            if "not a database" in str(error) or "malformed" in str(error):
                raise StoreOpenError(
                    f"{path} is not a usable SQLite file ({error}); it was left unchanged. "
                    f"Pass another file {_CHOOSE}, or restore it from a pfunc kv export."
                ) from error
            gone = not path.parent.is_dir()  # a typo'd --kv makes no folder of its own
            raise StoreOpenError(
                f"cannot open the KV store at {path}: "
                f"{f'there is no folder {path.parent}' if gone else error}. "
                f"Pass a writable file path {_CHOOSE}, or fix the folder's permissions."
            ) from error
        return cls(path, conn)

    def check(self) -> None:
        """SQLite's own check of the file (quick_check): StoreCorruptError when damaged.
        Costs a read of the whole file, so the kv commands and pfunc dev run it, not
        every pfunc run."""
        try:
            with self._fast_lock:
                rows = self._fast.execute("PRAGMA quick_check").fetchall()
        except sqlite3.DatabaseError as error:
            rows = [(str(error),)]
        if rows != [("ok",)]:
            problem = " ".join(" ".join(str(row[0]).split()) for row in rows[:3])
            raise StoreCorruptError(
                f"the KV store {self.path} is damaged ({problem}); restore it from a "
                "pfunc kv export, or move it away to start empty"
            )

    async def import_all(
        self, keyset: str, items: list[tuple[str, str, int]], counters: list[tuple[str, int]]
    ) -> None:
        """Write every item and counter in one transaction: all of them or none."""
        await self._transaction(
            [
                (
                    "INSERT INTO items(keyset,key,value,expires_at) VALUES(?,?,?,?) "
                    "ON CONFLICT(keyset,key) DO UPDATE SET value=excluded.value, "
                    "expires_at=excluded.expires_at",
                    (keyset, key, value, expires),
                )
                for key, value, expires in items
            ]
            + [
                (
                    "INSERT INTO counters(keyset,key,value) VALUES(?,?,?) "
                    "ON CONFLICT(keyset,key) DO UPDATE SET value=excluded.value",
                    (keyset, key, value),
                )
                for key, value in counters
            ]
        )

    def checkpoint_in_background(self) -> None:
        """For a long-running server: checkpoints leave the connection that commits (on
        the event loop) for a thread of their own, but for a rare one at BACKSTOP_PAGES
        (see checkpoints.py). A store in memory has no WAL."""
        if self._checkpointer is not None or str(self.path) == ":memory:":
            return
        self._set_autocheckpoint(BACKSTOP_PAGES)
        self._checkpointer = Checkpointer(self.path, lambda: self._set_autocheckpoint(1000))

    def _set_autocheckpoint(self, pages: int) -> None:
        with contextlib.suppress(sqlite3.Error), self._fast_lock:
            self._fast.execute(f"PRAGMA wal_autocheckpoint={pages}")

    async def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop()
            self._checkpointer = None
        await self.lock_waits.close()
        if str(self.path) == ":memory:":
            # Whatever still holds this store fails as on a closed one, never writing
            # into the next scenario's: swapped under the lock its statements take.
            with self._fast_lock:
                kept, self._fast = self._fast, _closed_connection()
                self.lock_waits._fast = self._fast
            _keep_memory(kept, self._changes_when_fresh)
        else:
            self._fast.close()

    async def execute(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        """One statement on the store's file (for other tables of the project's state)."""
        return await self._run(sql, params)

    async def _run(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        try:
            with self._fast_lock:
                return self._fast.execute(sql, params).fetchall()
        except sqlite3.OperationalError as error:
            if not busy(error):
                raise
        if self.lock_waits.waits_on_fast(running_loop() is not None):
            return self.lock_waits.on_fast(lambda: self._fast.execute(sql, params).fetchall())
        return await self.lock_waits.run(sql, params)

    async def _transaction(self, statements: Statements) -> None:
        """Run several statements as one transaction: all of them or none."""
        with self._fast_lock:
            try:
                self._fast.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as error:
                if not busy(error):
                    raise
            else:
                self._commit(statements)
                return
        if self.lock_waits.waits_on_fast(running_loop() is not None):

            def begin_and_commit() -> None:
                self._fast.execute("BEGIN IMMEDIATE")
                self._commit(statements)

            self.lock_waits.on_fast(begin_and_commit)
            return
        await self.lock_waits.transaction(statements)

    def _commit(self, statements: Statements) -> None:
        """The statements of a transaction the fast connection has begun, then COMMIT."""

        def write() -> None:
            for sql, params in statements:
                self._fast.execute(sql, params)

        commit_or_roll_back(self._fast, write)

    # --- items -----------------------------------------------------------------

    async def get_item(self, keyset: str, key: str, now_ms: int) -> str | None:
        rows = await self._run(
            "SELECT value FROM items WHERE keyset=? AND key=? AND expires_at>?",
            (keyset, key, now_ms),
        )
        return rows[0][0] if rows else None

    async def set_item(self, keyset: str, key: str, value_json: str, expires_at: int) -> None:
        await self._run(
            "INSERT INTO items(keyset,key,value,expires_at) VALUES(?,?,?,?) "
            "ON CONFLICT(keyset,key) DO UPDATE SET value=excluded.value, "
            "expires_at=excluded.expires_at",
            (keyset, key, value_json, expires_at),
        )

    async def delete_item(self, keyset: str, key: str) -> None:
        await self._run("DELETE FROM items WHERE keyset=? AND key=?", (keyset, key))

    async def remove(self, keyset: str, key: str) -> None:
        """Remove the item and the counter under one key, in one transaction."""
        await self._transaction(
            [
                ("DELETE FROM items WHERE keyset=? AND key=?", (keyset, key)),
                ("DELETE FROM counters WHERE keyset=? AND key=?", (keyset, key)),
            ]
        )

    async def item_keys(self, keyset: str, after: str | None, limit: int, now_ms: int) -> list[str]:
        rows = await self._run(
            "SELECT key FROM items WHERE keyset=? AND key>? AND expires_at>? ORDER BY key LIMIT ?",
            (keyset, after or "", now_ms, limit),
        )
        return [row[0] for row in rows]

    async def items(
        self,
        keyset: str,
        prefix: str,
        now_ms: int,
        *,
        after: str | None = None,
        limit: int = -1,
    ) -> list[tuple[str, str, int]]:
        """Live items whose key starts with `prefix` (and comes after `after`): (key, JSON
        text, expires_at), sorted, at most `limit` (-1: all). A range on the primary key,
        so a page costs the same whatever the store's size."""
        low, high = key_range(prefix, after)
        return [
            (row[0], row[1], row[2])
            for row in await self._run(
                "SELECT key, value, expires_at FROM items WHERE keyset=? AND key>=? AND key<? "
                "AND expires_at>? ORDER BY key LIMIT ?",
                (keyset, low, high, now_ms, limit),
            )
        ]

    async def clear(self, keyset: str) -> None:
        await self._transaction(
            [
                ("DELETE FROM items WHERE keyset=?", (keyset,)),
                ("DELETE FROM counters WHERE keyset=?", (keyset,)),
            ]
        )

    # --- counters --------------------------------------------------------------

    async def counters(
        self, keyset: str, prefix: str, *, after: str | None = None, limit: int = -1
    ) -> list[tuple[str, int]]:
        """Counters whose key starts with `prefix`, as items() pages them."""
        low, high = key_range(prefix, after)
        return [
            (row[0], int(row[1]))
            for row in await self._run(
                "SELECT key, value FROM counters WHERE keyset=? AND key>=? AND key<? "
                "ORDER BY key LIMIT ?",
                (keyset, low, high, limit),
            )
        ]

    async def set_counter(self, keyset: str, key: str, value: int) -> None:
        if not fits_counter(value):
            raise CounterOverflow(f"counter {key!r} is {value}, past the 64 bits counters hold")
        await self._run(
            "INSERT INTO counters(keyset,key,value) VALUES(?,?,?) "
            "ON CONFLICT(keyset,key) DO UPDATE SET value=excluded.value",
            (keyset, key, value),
        )

    async def get_counter(self, keyset: str, key: str) -> int:
        rows = await self._run("SELECT value FROM counters WHERE keyset=? AND key=?", (keyset, key))
        return int(rows[0][0]) if rows else 0

    async def incr_counter(self, keyset: str, key: str, amount: int) -> int:
        """The counter after adding `amount`. Raises CounterOverflow, writing nothing,
        when the sum leaves 64-bit integers (SQLite would store it as a float)."""
        if not fits_counter(amount):
            raise CounterOverflow
        # One UPSERT ... RETURNING: atomic across connections and processes. A sum past
        # 64 bits evaluates abs() of the smallest integer, SQLite's "integer overflow"
        # error, so the statement fails whole instead.
        try:
            rows = await self._run(
                "INSERT INTO counters(keyset,key,value) VALUES(?,?,?) "
                "ON CONFLICT(keyset,key) DO UPDATE SET value=CASE "
                "WHEN excluded.value > 0 AND value > 9223372036854775807 - excluded.value "
                "THEN abs(-9223372036854775808) "
                "WHEN excluded.value < 0 AND value < -9223372036854775808 - excluded.value "
                "THEN abs(-9223372036854775808) "
                "ELSE value + excluded.value END "
                "RETURNING value",
                (keyset, key, amount),
            )
        except sqlite3.OperationalError as error:
            if "integer overflow" in str(error):
                raise CounterOverflow from None
            raise
        return int(rows[0][0])

    async def counter_keys(self, keyset: str, after: str | None, limit: int) -> list[str]:
        rows = await self._run(
            "SELECT key FROM counters WHERE keyset=? AND key>? ORDER BY key LIMIT ?",
            (keyset, after or "", limit),
        )
        return [row[0] for row in rows]
