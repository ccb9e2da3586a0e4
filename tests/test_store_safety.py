"""The store's file is never half written and never someone else's: imports are all or
nothing, exports are renamed into place, a full disk is one line, foreign and damaged
files are refused without being changed."""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import run_cli


def kv(*args: str | Path, cwd: Path) -> tuple[int, str, str]:
    run = run_cli("kv", *args, cwd=cwd)
    return run.code, run.stdout, run.stderr


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_import_is_all_or_nothing_with_the_checks_of_kv_set(tmp_path):
    store = tmp_path / "kv.sqlite3"
    assert kv("set", "before", "1", "--kv", store, cwd=tmp_path)[0] == 0
    good = {"key": "fine", "value": {"a": 1}, "expires_at": "2099-01-01T00:00:00Z"}
    for bad in (
        {"key": "k" * 5000, "value": 1, "expires_at": "2099-01-01T00:00:00Z"},
        {"key": "big", "value": "x" * 100_000, "expires_at": "2099-01-01T00:00:00Z"},
        {"key": "when", "value": 1, "expires_at": "not a date"},
        {"key": 7, "value": 1, "expires_at": "2099-01-01T00:00:00Z"},
    ):
        export = tmp_path / "in.json"
        export.write_text(
            json.dumps({"format": "pfunc-kv-1", "items": [good, bad, good], "counters": {"c": 1}})
        )
        code, _, err = kv("import", export, "--kv", store, cwd=tmp_path)
        assert code == 2, err
        assert "items[1]" in err and len(err.strip().splitlines()) == 1
    listed = json.loads(kv("list", "--json", "--kv", store, cwd=tmp_path)[1])
    assert [item["key"] for item in listed] == ["before"]  # nothing of the bad imports
    assert json.loads(kv("counters", "--json", "--kv", store, cwd=tmp_path)[1]) == []


def test_export_is_written_whole_or_not_at_all(tmp_path):
    store = tmp_path / "kv.sqlite3"
    kv("set", "a", '{"x":1}', "--kv", store, cwd=tmp_path)
    target = tmp_path / "out.json"
    assert kv("export", target, "--kv", store, cwd=tmp_path)[0] == 0
    first = target.read_text()
    # An unwritable target: one line, exit 2, and the earlier export untouched.
    target.chmod(0o444)
    (tmp_path / "ro").mkdir()
    code, _, err = kv("export", tmp_path / "ro" / "missing" / "x.json", "--kv", store, cwd=tmp_path)
    assert code == 2 and "cannot write" in err
    assert target.read_text() == first
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_full_disk_is_one_line_and_changes_nothing(tmp_path, monkeypatch):
    """SQLite's own "database or disk is full" (SQLITE_FULL), made real by capping the
    file at its current size with max_page_count."""
    from click.testing import CliRunner

    from pfunc.cli.commands import main
    from pfunc.store import KVStore

    store = tmp_path / "kv.sqlite3"
    assert kv("set", "kept", '"old"', "--kv", store, cwd=tmp_path)[0] == 0
    opened = KVStore.open

    def full(path: Path | str) -> KVStore:
        kv_store = opened(path)
        (pages,) = kv_store._fast.execute("PRAGMA page_count").fetchone()
        kv_store._fast.execute(f"PRAGMA max_page_count={pages}")
        return kv_store

    monkeypatch.setattr(KVStore, "open", staticmethod(full))
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        main, ["kv", "set", "new", json.dumps("x" * 20_000), "--kv", str(store)]
    )
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "disk is full" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    monkeypatch.undo()
    listed = json.loads(kv("list", "--json", "--kv", store, cwd=tmp_path)[1])
    assert [(item["key"], item["value"]) for item in listed] == [("kept", "old")]


@pytest.mark.parametrize("table", ["users", "items"])  # "items" with columns of its own
def test_a_database_that_is_not_a_pfunc_store_is_refused_unchanged(tmp_path, table):
    theirs = tmp_path / "app.db"
    connection = sqlite3.connect(theirs)
    connection.execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, name TEXT)")
    connection.execute(f"INSERT INTO {table}(name) VALUES ('ada')")
    connection.commit()
    connection.close()
    before = digest(theirs)
    for command in (["list"], ["set", "k", "1"], ["counters"]):
        code, _, err = kv(*command, "--kv", theirs, cwd=tmp_path)
        assert code == 2 and "not a pfunc KV store" in err and table in err
    assert digest(theirs) == before
    assert not (tmp_path / "app.db-wal").exists()
    run = run_cli("run", "x.js", "--kv", theirs, cwd=tmp_path)
    assert run.code == 2
    text = tmp_path / "notes.txt"
    text.write_text("just text, not SQLite\n" * 100)
    code, _, err = kv("list", "--kv", text, cwd=tmp_path)
    assert code == 2 and "not a usable SQLite file" in err
    assert text.read_text() == "just text, not SQLite\n" * 100


def test_processes_opening_one_new_store_at_once_all_open_it(tmp_path):
    """Each opening adds the columns pfunc's schema gained since a store was first made;
    two openings at once both saw one missing and both added it, and the second failed
    ("duplicate column name", in CI: four processes starting on one new file). Here one
    holds the write lock while it adds them, as a process a moment ahead would."""
    from pfunc.store_schema import ADDED_COLUMNS, APPLICATION_ID, SCHEMA

    path = tmp_path / "kv.sqlite3"
    ahead = sqlite3.connect(path, isolation_level=None)
    ahead.execute("PRAGMA journal_mode=WAL")
    ahead.executescript(SCHEMA)  # the tables as first made: without the added columns
    ahead.execute("BEGIN IMMEDIATE")

    def add_them() -> None:
        for table, column, declaration in ADDED_COLUMNS:
            ahead.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
        ahead.execute(f"PRAGMA application_id={APPLICATION_ID}")
        ahead.execute("COMMIT")
        ahead.close()

    # Held long enough that it reads the schema (WAL lets it) before the columns come.
    _opens_while_held(path, 0.5, add_them)


def test_a_new_store_opens_while_another_process_writes_to_the_file(tmp_path):
    """Switching a new file to WAL while another connection holds its write lock is
    refused at once ("database is locked"): SQLite does not wait there, since waiting
    could deadlock. Processes opening one new store at once met it (1 open in ~15 in a
    stress run); the open now tries again, within the store's wait for the lock."""
    path = tmp_path / "kv.sqlite3"
    writer = sqlite3.connect(path, isolation_level=None)  # a new file, its journal not WAL
    writer.execute("BEGIN IMMEDIATE")

    def commit() -> None:
        writer.execute("COMMIT")
        writer.close()

    _opens_while_held(path, 0.3, commit)


def _opens_while_held(path: Path, hold: float, release: Callable[[], None]) -> None:
    """KVStore.open(path) on a thread while this one holds a lock on the file for `hold`
    seconds, then `release()`s it: the store opens."""
    import threading

    from pfunc.store import KVStore

    opened: list[object] = []

    def open_it() -> None:
        try:
            opened.append(KVStore.open(path))
        except Exception as error:  # the assertion shows what it was
            opened.append(error)

    opener = threading.Thread(target=open_it)
    opener.start()
    time.sleep(hold)
    release()
    opener.join(timeout=30)
    (store,) = opened
    assert isinstance(store, KVStore), store
    asyncio.run(store.close())


def test_a_damaged_store_is_noticed(tmp_path):
    store = tmp_path / "kv.sqlite3"
    export = tmp_path / "many.json"
    export.write_text(
        json.dumps(
            {"format": "pfunc-kv-1", "items": [], "counters": {f"c{n:05}": n for n in range(2000)}}
        )
    )
    assert kv("import", export, "--kv", store, cwd=tmp_path)[0] == 0
    connection = sqlite3.connect(store)
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()
    data = bytearray(store.read_bytes())
    assert len(data) > 4096 * 12
    data[4096 * 5 : 4096 * 10] = b"\x00garbage" * 2560  # five of the counters' pages
    store.write_bytes(bytes(data))
    code, out, err = kv("counters", "--kv", store, cwd=tmp_path)
    assert code in (1, 2), out
    assert "damaged" in err or "not a usable SQLite file" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("ttl", ["nan", "inf", "-inf"])
def test_ttls_that_are_not_numbers_of_minutes(tmp_path, ttl):
    code, _, err = kv("set", "k", "1", "--ttl", ttl, "--kv", tmp_path / "kv.sqlite3", cwd=tmp_path)
    if ttl == "nan":
        assert code == 2 and "must be a number of minutes" in err
    else:
        assert code == 0 and "clamped" in err  # infinity is clamped, as any large TTL is


def test_a_server_store_checkpoints_off_the_committing_connection(tmp_path):
    """The dev server's commits never run a checkpoint (its fsync would stall the event
    loop); a thread of the store's own moves the WAL into the file while it serves."""
    import asyncio

    asyncio.run(_checkpoints_in_background(tmp_path))


async def _checkpoints_in_background(tmp_path: Path) -> None:
    import asyncio

    from pfunc.checkpoints import BACKSTOP_PAGES
    from pfunc.store import KVStore

    path = tmp_path / "kv.sqlite3"
    store = KVStore.open(path)
    store.checkpoint_in_background()
    try:
        assert store._fast.execute("PRAGMA wal_autocheckpoint").fetchone() == (BACKSTOP_PAGES,)
        size_before = path.stat().st_size
        for number in range(200):  # a few pages: far below SQLite's own 1,000-page trigger
            await store.set_item("k", f"key-{number}", json.dumps("x" * 200), 2**62)
        for _ in range(
            200
        ):  # the thread runs every CHECKPOINT_EVERY (pfunc/checkpoints.py); wait for it
            if path.stat().st_size > size_before:
                break
            await asyncio.sleep(0.05)
        assert path.stat().st_size > size_before  # the rows reached the database file
    finally:
        await store.close()
    reopened = sqlite3.connect(path)
    assert reopened.execute("SELECT count(*) FROM items").fetchone() == (200,)
    reopened.close()


def _wal_after_writes(path: Path, writes: int, gap: float = 0.0) -> int:
    """The WAL's size after `writes` commits on a server store at `path`, `gap` seconds
    apart (the dev server's writes have the rest of a request between them)."""
    import asyncio

    from pfunc.store import KVStore

    store = KVStore.open(path)
    store.checkpoint_in_background()

    async def write() -> None:
        for _ in range(writes):
            await store.incr_counter("k", "hits", 1)
            if gap:
                time.sleep(gap)  # the GIL let go, as a request's I/O would

    try:
        asyncio.run(write())
        assert asyncio.run(store.get_counter("k", "hits")) == writes
        return path.with_name(path.name + "-wal").stat().st_size
    finally:
        asyncio.run(store.close())


def test_sustained_writes_restart_a_server_store_wal_from_its_thread(tmp_path, monkeypatch):
    """Under writes without a pause, a passive checkpoint never finds every frame copied,
    so the WAL never started over and grew 4 KB a commit: the thread restarts it."""
    import pfunc.checkpoints
    import pfunc.store

    monkeypatch.setattr(pfunc.checkpoints, "CHECKPOINT_EVERY", 0.005)
    monkeypatch.setattr(pfunc.checkpoints, "RESTART_FRAMES", 200)
    monkeypatch.setattr(pfunc.store, "BACKSTOP_PAGES", 10**9)  # the thread's doing only
    wal = _wal_after_writes(tmp_path / "kv.sqlite3", 2500, gap=0.0002)
    assert wal <= 1000 * 4096  # without the restart, 2,500 commits left a 10 MB WAL


def test_the_committing_connection_keeps_a_backstop_checkpoint(tmp_path, monkeypatch):
    import pfunc.checkpoints
    import pfunc.store

    monkeypatch.setattr(pfunc.checkpoints, "RESTART_FRAMES", 10**9)  # the thread never restarts
    monkeypatch.setattr(pfunc.store, "BACKSTOP_PAGES", 500)
    wal = _wal_after_writes(tmp_path / "kv.sqlite3", 2000)
    assert wal <= (500 + 100) * 4096


def test_checkpoints_return_to_the_committing_connection_if_their_thread_cannot_run(tmp_path):
    import asyncio

    from pfunc.store import KVStore

    store = KVStore.open(tmp_path / "kv.sqlite3")
    store.path = tmp_path / "gone" / "kv.sqlite3"  # the thread's own connection will fail
    store.checkpoint_in_background()
    store._checkpointer._thread.join(timeout=30)
    # SQLite's own checkpoints are back on: the WAL cannot grow unchecked.
    assert store._fast.execute("PRAGMA wal_autocheckpoint").fetchone() == (1000,)
    asyncio.run(store.close())


def test_a_dev_server_write_waiting_for_the_lock_past_the_time_limit_never_commits(tmp_path):
    """pfunc dev waits for another process's write lock off its loop (a connection of
    its own): that wait, too, ends with the execution's time, and commits nothing after."""
    import threading

    from tests.dev_harness import InProcessDev

    (tmp_path / "pfunc.toml").write_text(
        '[project]\nsubscribe_key = "sub-c-l"\npublish_key = "pub-c-l"\n\n'
        "[limits]\ntimeout = 0.5\n\n"
        '[[functions]]\nname = "count"\nfile = "count.js"\nevent = "on-request"\npath = "count"\n'
    )
    (tmp_path / "count.js").write_text(
        'const db = require("kvstore");\n'
        "export default async (request, response) =>\n"
        '  response.send({ n: await db.incrCounter("hits") });\n'
    )
    server = InProcessDev(tmp_path)
    try:
        assert server.request("GET", "/v1/blocks/sub-key/sub-c-l/count")[0] == 200
        holder = sqlite3.connect(tmp_path / ".pfunc" / "kv.sqlite3", isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # the write lock, as another writer holds it
        answer: list[tuple[int, dict, str]] = []
        try:
            asking = threading.Thread(
                target=lambda: answer.append(
                    server.request("GET", "/v1/blocks/sub-key/sub-c-l/count")
                )
            )
            asking.start()
            time.sleep(2)  # past the execution's limit; a write still waiting would go through
        finally:
            holder.execute("COMMIT")
            holder.close()
        asking.join(30)
        status, _, body = answer[0]
        assert status == 503 and "time limit" in json.loads(body)["message"], body
        with sqlite3.connect(tmp_path / ".pfunc" / "kv.sqlite3") as store:
            (hits,) = store.execute("SELECT value FROM counters WHERE key='hits'").fetchone()
        assert hits == 1
    finally:
        server.stop()


def test_a_dev_server_whose_requests_met_another_process_lock_at_once_still_stops(tmp_path):
    """Requests that meet another process's write lock together wait on one connection
    of the server's own; before, each opened one, only the last was closed, and the
    others' threads kept the stopped server's process from ever exiting."""
    import signal
    import threading

    from tests.dev_harness import DevProcess

    (tmp_path / "pfunc.toml").write_text(
        '[project]\nsubscribe_key = "sub-c-l"\npublish_key = "pub-c-l"\n\n'
        '[[functions]]\nname = "count"\nfile = "count.js"\nevent = "on-request"\npath = "count"\n'
    )
    (tmp_path / "count.js").write_text(
        'const db = require("kvstore");\n'
        "export default async (request, response) =>\n"
        '  response.send({ n: await db.incrCounter("hits") });\n'
    )
    server = DevProcess(tmp_path, "--no-intervals")
    try:
        path = "/v1/blocks/sub-key/sub-c-l/count"
        for _ in range(40):  # quick: from now on it runs on the server's own loop
            assert server.request("GET", path)[0] == 200
        holder = sqlite3.connect(tmp_path / ".pfunc" / "kv.sqlite3", isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # the write lock, as another writer holds it
        answers: list[int] = []
        asking = [
            threading.Thread(target=lambda: answers.append(server.request("GET", path)[0]))
            for _ in range(6)
        ]
        try:
            for thread in asking:
                thread.start()
            time.sleep(0.5)  # every request is waiting for the lock now
        finally:
            holder.execute("COMMIT")
            holder.close()
        for thread in asking:
            thread.join(30)
        assert answers == [200] * 6
        server.process.send_signal(signal.SIGINT)
        assert server.process.wait(timeout=20) == 0
    finally:
        server.stop()
    with sqlite3.connect(tmp_path / ".pfunc" / "kv.sqlite3") as store:
        (hits,) = store.execute("SELECT value FROM counters WHERE key='hits'").fetchone()
    assert hits == 46


def _lock_wait_threads() -> int:
    import threading

    return sum("_connection_worker_thread" in thread.name for thread in threading.enumerate())


def test_calls_meeting_the_lock_together_share_one_wait_connection_closed_with_the_store(
    tmp_path,
):
    """The dev server's waits for another process's lock: however many calls meet it at
    once, one connection (one thread) of its own; closing the store closes it, and a
    call after the close opens none."""
    from pfunc.store import KVStore

    path = tmp_path / "kv.sqlite3"
    before = _lock_wait_threads()

    async def scenario() -> None:
        store = KVStore.open(path)
        store.lock_waits.home = asyncio.get_running_loop()
        store.lock_waits.keep_loop_free = True  # as in pfunc dev
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # the write lock, as another writer holds it
        calls = [asyncio.ensure_future(store.incr_counter("sub-c-x", "hits", 1)) for _ in range(8)]
        await asyncio.sleep(0.3)  # each call has met the lock and waits now
        assert _lock_wait_threads() == before + 1
        holder.execute("COMMIT")
        holder.close()
        assert sorted(await asyncio.gather(*calls)) == list(range(1, 9))
        await store.close()
        assert _lock_wait_threads() == before
        with pytest.raises(sqlite3.ProgrammingError):
            await store.lock_waits.run("SELECT 1", ())
        assert _lock_wait_threads() == before

    asyncio.run(scenario())


def test_a_call_queued_behind_another_wait_for_the_lock_ends_with_its_execution(tmp_path):
    """The dev server's waits for another process's lock take turns on one connection;
    a call's wait for its turn ends with its execution's time too. It waited out the
    calls before it (a REST statement's 10 s each), then committed after its execution
    had ended."""
    from pfunc.store import KVStore
    from pfunc.store_contention import CALL_DEADLINE

    path = tmp_path / "kv.sqlite3"

    async def scenario() -> tuple[list[object], int]:
        store = KVStore.open(path)
        store.lock_waits.home = asyncio.get_running_loop()
        store.lock_waits.keep_loop_free = True  # as in pfunc dev
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # the write lock, as another writer holds it
        # No execution's: waits for the lock up to 10 s, holding the turn meanwhile.
        rest = asyncio.ensure_future(store.incr_counter("sub-c-x", "rest", 1))
        await asyncio.sleep(0.2)

        async def in_an_execution() -> int:
            CALL_DEADLINE.set(time.monotonic() + 0.3)  # (this task's own context)
            return await store.incr_counter("sub-c-x", "late", 1)

        execution = asyncio.ensure_future(in_an_execution())
        await asyncio.sleep(1.0)  # past the execution's time
        holder.execute("COMMIT")
        holder.close()
        outcomes = await asyncio.gather(rest, execution, return_exceptions=True)
        late = await store.get_counter("sub-c-x", "late")
        await store.close()
        return outcomes, late

    (rest, execution), late = asyncio.run(scenario())
    assert rest == 1
    assert isinstance(execution, sqlite3.OperationalError) and late == 0
