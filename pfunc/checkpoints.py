"""Checkpoints of a store's WAL on a thread of their own (the dev server's store)."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

# Seconds between checkpoints when they run in the background (the dev server).
CHECKPOINT_EVERY = 0.25
# The WAL starts over from its beginning only when a write finds every frame copied.
# Under sustained writes a frame arrives while a passive checkpoint copies, so that never
# happens and the WAL grows 4 KB a commit. Past this many frames the thread asks for a
# RESTART checkpoint instead: it holds writers off for the last few frames (they wait on
# the store's slow connection, off the event loop) and starts the WAL over.
RESTART_FRAMES = 4000
# SQLite's own checkpoint in the committing connection, should the thread not get its
# restart in (measured: in a commit on the loop it costs the dev server's p99 2 ms).
BACKSTOP_PAGES = 16000


class Checkpointer:
    """Copies the WAL into the database file on a thread of its own, so that the fsync a
    checkpoint makes never stalls the event loop. (By default SQLite checkpoints inside
    whichever commit crosses 1,000 WAL pages: measured, that request waits several ms,
    and the dev server's p99 doubled.) A passive checkpoint waits for nobody; a restart
    past RESTART_FRAMES keeps the WAL bounded. The committing connection keeps SQLite's
    own at BACKSTOP_PAGES; should the thread fail, `on_failure` hands checkpoints back to
    it entirely."""

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
                    _, frames, _ = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    if frames >= RESTART_FRAMES:  # gives up at once if a write is under way
                        conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
        except Exception:
            self._on_failure()
        finally:
            conn.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
