"""Checkpoints of a store's WAL on a thread of their own (the dev server's store)."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

# Seconds between checkpoints when they run in the background (the dev server).
CHECKPOINT_EVERY = 0.25


class Checkpointer:
    """Copies the WAL into the database file on a thread of its own, so that the fsync a
    checkpoint makes never stalls the event loop. (By default SQLite checkpoints inside
    whichever commit crosses 1,000 WAL pages: measured, that request waits several ms,
    and the dev server's p99 doubled.) A passive checkpoint waits for nobody. Should the
    thread fail, `on_failure` hands checkpoints back to the committing connection, so
    the WAL never grows unchecked."""

    def __init__(self, path: Path, on_failure: Callable[[], None]) -> None:
        self._stop = threading.Event()
        self._on_failure = on_failure
        self._thread = threading.Thread(
            target=self._run, args=(path,), name="pfunc-checkpoint", daemon=True
        )
        self._thread.start()

    def _run(self, path: Path) -> None:
        try:
            conn = sqlite3.connect(
                str(path), isolation_level=None, check_same_thread=False, timeout=0
            )
        except Exception:
            self._on_failure()
            return
        try:
            while not self._stop.wait(CHECKPOINT_EVERY):
                # Busy, or going away: the next round catches up.
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except Exception:
            self._on_failure()
        finally:
            conn.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
