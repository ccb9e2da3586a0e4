"""Checkpoints of a store's WAL on a thread of their own (the dev server's store)."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

# Seconds between checkpoints when they run in the background (the dev server).
CHECKPOINT_EVERY = 0.25
# The WAL restarts from its beginning only when a write finds every frame copied; under
# sustained writes frames keep arriving while the thread copies, so that never happens and
# the WAL would grow without bound (4 KB a commit). SQLite's own checkpoint at this many
# pages (16 MB), inside a commit, catches up and restarts it: cheap, since the thread has
# already copied nearly every frame, and rare (once per 4,000 commits under load).
BACKSTOP_PAGES = 4000


class Checkpointer:
    """Copies the WAL into the database file on a thread of its own, so that the fsync a
    checkpoint makes never stalls the event loop. (By default SQLite checkpoints inside
    whichever commit crosses 1,000 WAL pages: measured, that request waits several ms,
    and the dev server's p99 doubled.) A passive checkpoint waits for nobody. The
    committing connection keeps SQLite's own at BACKSTOP_PAGES; should the thread fail,
    `on_failure` hands checkpoints back to it entirely."""

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
