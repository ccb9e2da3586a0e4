"""File watching for `pfunc dev` (watchdog): saves become one coalesced reload.

Editors save in different ways (write in place, or write a temporary file and rename
it over the original); both end up as a path of interest here. A burst of events
within the debounce window becomes one call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

WATCHED_SUFFIXES = (".js", ".py")
WATCHED_NAMES = ("pfunc.toml",)
DEBOUNCE_SECONDS = 0.02


def _interesting(path: str) -> bool:
    name = Path(path).name
    return name in WATCHED_NAMES or (
        path.endswith(WATCHED_SUFFIXES) and "/.pfunc/" not in path and not name.startswith(".")
    )


class Reloader(FileSystemEventHandler):
    def __init__(
        self,
        root: Path,
        loop: asyncio.AbstractEventLoop,
        on_change: Callable[[set[Path]], Awaitable[None]],
        debounce: float = DEBOUNCE_SECONDS,
    ) -> None:
        self.root = root
        self.loop = loop
        self.on_change = on_change
        self.debounce = debounce
        self._pending: set[Path] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._running: asyncio.Task[None] | None = None
        self._observer = Observer()

    def start(self) -> None:
        self._observer.schedule(self, str(self.root), recursive=True)
        self._observer.start()

    def stop(self) -> None:
        self._observer.stop()
        self._observer.join(timeout=2)

    # watchdog calls this on its own thread.
    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_directory or event.event_type in ("opened", "closed_no_write", "deleted"):
            return
        paths = [str(event.src_path)]
        destination = getattr(event, "dest_path", "")
        if destination:
            paths.append(str(destination))
        chosen = {Path(p) for p in paths if _interesting(p)}
        if chosen:
            self.loop.call_soon_threadsafe(self._schedule, chosen)

    def _schedule(self, paths: set[Path]) -> None:
        self._pending |= paths
        if self._timer is None:
            self._timer = self.loop.call_later(self.debounce, self._fire)

    def _fire(self) -> None:
        self._timer = None
        paths, self._pending = self._pending, set()
        previous = self._running

        async def run() -> None:
            if previous is not None:  # reloads apply in the order the saves happened
                await previous
            await self.on_change(paths)

        self._running = asyncio.ensure_future(run())
