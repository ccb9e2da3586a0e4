"""Hot reload for `pfunc dev`: file watching (watchdog), where saves become one coalesced
reload, and what a reload does to the running server.

Editors save in different ways (write in place, or write a temporary file and rename
it over the original); both end up as a path of interest here. A burst of events
within the debounce window becomes one call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from pfunc.errors import HandlerLoadError, PfuncUsageError
from pfunc.executor import Executor
from pfunc.project import FunctionConfig
from pfunc.project_file import parse_project
from pfunc.server.admin import describe_functions
from pfunc.server.state import DevState
from pfunc.vault_sources import load_secrets

WATCHED_SUFFIXES = (".js", ".py")
# A load still running after this long is said to be (top-level code that runs long holds
# the saves made meanwhile until it ends, at most the time limit).
SLOW_LOAD_SECONDS = 2.0
WATCHED_NAMES = ("pfunc.toml", ".env")  # .env: vault secrets beside pfunc.toml
DEBOUNCE_SECONDS = 0.03
MAX_WAIT_SECONDS = 0.5


# Folders never watched: state (the KV store's WAL is written on every KV call, and each
# write would wake the watcher's threads), version control, dependencies, caches.
SKIPPED_FOLDERS = frozenset({"node_modules", "__pycache__", "venv"})


def _watched_folder(path: Path, skipped: frozenset[Path]) -> bool:
    return (
        not path.name.startswith(".") and path.name not in SKIPPED_FOLDERS and path not in skipped
    )


def _interesting(path: str) -> bool:
    name = Path(path).name
    return name in WATCHED_NAMES or (
        path.endswith(WATCHED_SUFFIXES) and "/.pfunc/" not in path and not name.startswith(".")
    )


def _not_the_stop_race(record: logging.LogRecord) -> bool:
    return "called when the thread is inactive" not in record.getMessage()


class Reloader(FileSystemEventHandler):
    def __init__(
        self,
        root: Path,
        loop: asyncio.AbstractEventLoop,
        on_change: Callable[[set[Path]], Awaitable[None]],
        debounce: float = DEBOUNCE_SECONDS,
        state_folder: Path | None = None,
        on_save: Callable[[set[Path]], None] | None = None,
        function_files: Callable[[], Iterable[Path]] | None = None,
    ) -> None:
        self.root = root
        # The functions' own files are watched whatever their name or folder (mod.mjs, a
        # dot-folder, a symlink's target outside the project), read again after each
        # reload, since pfunc.toml may name others. A folder watched only for them (an
        # "extra" one) is no project folder: only those files count there, and no folder
        # made in it is watched.
        self.function_files = function_files or (lambda: ())
        self._known: frozenset[Path] = frozenset()
        self._extra: set[Path] = set()
        # The watch table is kept by the watchdog thread (new folders) and the loop's
        # (function files after a reload): one at a time.
        self._lock = threading.Lock()
        self.on_save = on_save  # told each save at once, before the debounced reload
        # The store's folder is skipped even when its name is not hidden (kv = "state/...").
        skipped = {state_folder.resolve()} if state_folder is not None else set()
        self._skipped = frozenset(skipped - {root.resolve()})
        self._watched: dict[Path, Any] = {}  # folder -> its watchdog watch
        self.loop = loop
        self.on_change = on_change
        self.debounce = debounce
        self._pending: set[Path] = set()
        self._first_event = 0.0  # loop time of the first event of the pending burst
        self._timer: asyncio.TimerHandle | None = None
        self._running: asyncio.Task[None] | None = None
        self._observer = Observer()

    def start(self) -> None:
        # One watch per folder (not one recursive watch) so that skipped folders, the
        # store's above all, never wake the watcher; new folders are added as they appear.
        self._watch(self.root.resolve())
        self._watch_function_files()
        self._observer.start()

    def _watch_function_files(self) -> None:
        known: set[Path] = set()
        for file in self.function_files():
            with contextlib.suppress(OSError):  # a function whose file is not there yet
                known |= {file.absolute(), file.resolve()}
        needed = {path.parent for path in known if path.parent.is_dir()} - self._skipped
        with self._lock:
            adding = needed - set(self._watched)
            unneeded = self._extra - needed  # pfunc.toml names no file there now
            dropping = [self._watched.pop(folder) for folder in unneeded if folder in self._watched]
            self._extra -= unneeded
        self._unschedule(dropping)
        for folder in adding:
            self._add_watch(folder, extra=True)
        self._known = frozenset(known)

    # The observer holds its own lock while it hands us events (on_any_event takes ours):
    # its schedule and unschedule are called outside ours, never inside it.
    def _add_watch(self, folder: Path, extra: bool = False) -> None:
        """Watch `folder`, unless a watch of it was added meanwhile (which stays as it
        is); `extra`: a folder watched only for a function file in it."""
        watch = self._observer.schedule(self, str(folder), recursive=False)
        with self._lock:
            if folder not in self._watched:
                self._watched[folder] = watch
                if extra:
                    self._extra.add(folder)

    def _unschedule(self, watches: list[Any]) -> None:
        for watch in watches:
            with contextlib.suppress(KeyError, OSError):  # the kernel may have dropped it
                self._observer.unschedule(watch)

    def _interesting(self, path: str) -> bool:
        if Path(path).parent in self._extra:
            return Path(path) in self._known
        return _interesting(path) or Path(path) in self._known

    def _watch(self, folder: Path) -> set[Path]:
        """Watch the folder and those below it; the files of interest found there."""
        found: set[Path] = set()
        for current, children, _listed in os.walk(folder):
            here = Path(current)
            children[:] = [c for c in children if _watched_folder(here / c, self._skipped)]
            with self._lock:
                new = here not in self._watched
                self._extra.discard(here)  # a project folder after all
            if new:
                self._add_watch(here)
            # Listed again once watched: a file made between the walk's listing and the
            # watch would have neither an event nor a place here.
            with contextlib.suppress(OSError):
                found |= {
                    here / name for name in os.listdir(here) if self._interesting(str(here / name))
                }
        return found

    def _unwatch(self, folder: Path) -> None:
        """A folder deleted or moved away: forget its watches (and those below it), so that
        one made again at the same path is watched again."""
        with self._lock:
            gone = [p for p in self._watched if p == folder or folder in p.parents]
            watches = [self._watched.pop(path) for path in gone]
            self._extra -= set(gone)
        self._unschedule(watches)

    def stop(self) -> None:
        # watchdog logs its own stop's race (an event read as its thread ends) at ERROR,
        # which Python's last-resort handler printed under a Ctrl-C now and then.
        logging.getLogger("watchdog.observers.inotify").addFilter(_not_the_stop_race)
        self._observer.stop()
        self._observer.join(timeout=2)

    # watchdog calls this on its own thread.
    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_directory:
            if event.event_type in ("deleted", "moved"):
                self._unwatch(Path(str(event.src_path)))
            created = Path(str(getattr(event, "dest_path", "") or event.src_path))
            in_project = created.parent not in self._extra  # not a folder watched for one file
            if (
                event.event_type in ("created", "moved")
                and in_project
                and _watched_folder(created, self._skipped)
            ):
                found: set[Path] = set()
                with contextlib.suppress(OSError):  # gone again already
                    found = self._watch(created)
                # Files already in it (a folder moved in, or made with its files before its
                # watch began) sent no event of their own.
                if found:
                    self.loop.call_soon_threadsafe(self._schedule, found)
            return
        if event.event_type in ("opened", "closed_no_write"):
            return
        paths = [str(event.src_path)]
        destination = getattr(event, "dest_path", "")
        if destination:
            paths.append(str(destination))
        chosen = {Path(p) for p in paths if self._interesting(p)}
        if chosen:
            self.loop.call_soon_threadsafe(self._schedule, chosen)

    def _schedule(self, paths: set[Path]) -> None:
        """Reload once the files have been quiet for `debounce` seconds: every event moves
        the reload later, so a save that takes longer is read whole. A file written
        without pause for longer than MAX_WAIT is reloaded anyway (and again after)."""
        now = self.loop.time()
        if self.on_save is not None:
            self.on_save(paths)
        if not self._pending:
            self._first_event = now
        self._pending |= paths
        if self._timer is not None:
            self._timer.cancel()
        when = min(now + self.debounce, self._first_event + MAX_WAIT_SECONDS)
        self._timer = self.loop.call_at(max(when, now), self._fire)

    def _fire(self) -> None:
        self._timer = None
        if self._running is not None and not self._running.done():
            # One reload at a time, in the order of the saves: those made while one runs
            # wait, together, for it to end (_ended), so a burst of saves slower than the
            # debounce is one more reload, not a queue of them that falls behind.
            return
        paths, self._pending = self._pending, set()
        self._running = asyncio.ensure_future(self.on_change(paths))
        self._running.add_done_callback(self._ended)

    def _ended(self, reload: asyncio.Task[None]) -> None:
        if not reload.cancelled():
            reload.exception()  # reported by on_change itself; retrieved, not re-raised
        with contextlib.suppress(OSError):
            self._watch_function_files()  # pfunc.toml may name other files now
        if self._pending and self._timer is None:
            self._fire()


class ProjectReloader:
    """What a save means to the running server: pfunc.toml first (the last good one keeps
    serving when the new one is invalid), then each changed handler file."""

    def __init__(self, state: DevState, on_project: Callable[[], None]) -> None:
        self.state = state
        # What a save is compared with for what needs a restart: what the server runs on
        # (a save that puts it back says nothing more).
        self._started = state.project
        self.on_project = on_project  # called after a new pfunc.toml took over

    def note_save(self, paths: set[Path]) -> None:
        """A save seen (before its reload): when the code last changed moves only for a file
        that may change what runs (not a web client's .js beside the functions, which had
        kept every earlier execution from being saved as a scenario)."""
        if self._project_saved(paths) or self._reloaded_by(paths):
            self.state.note_save()

    def _project_saved(self, paths: set[Path]) -> bool:
        """Whether `paths` hold pfunc.toml or the .env beside it (its vault secrets)."""
        config = self.state.project.config_file
        if config is None:
            return False
        return any(_same(p, f) for p in paths for f in (config, config.parent / ".env"))

    def _reloaded_by(self, paths: set[Path]) -> list[FunctionConfig]:
        """The functions a save of `paths` loads again: those whose file it is, and every
        Python one for any .py file (a Python worker reads each module it imports once, a
        helper or another function's own file, from the handler's folder or the project's)."""
        python_saved = any(p.suffix == ".py" for p in paths)
        return [
            function
            for function in self.state.project.functions
            if (python_saved and function.file.suffix == ".py")
            or any(_same(p, function.file) for p in paths)
        ]

    def files_changed(self, paths: set[Path]) -> Awaitable[None]:
        """The reload of `paths`. The saves it reads are those made until now, when it is
        fired (read here, not when its task first runs: a save in between is the next
        reload's)."""
        return self._reload(paths, self.state.last_save_ms)

    async def _reload(self, paths: set[Path], saved: float) -> None:
        try:
            await self._files_changed(paths)
        except Exception as error:  # a fault of pfunc's own: say so, keep watching
            self.state.log({"type": "server-error", "path": "", "error": f"reload: {error!r}"})
        finally:
            self.state.note_reloaded(saved)

    async def _files_changed(self, paths: set[Path]) -> None:
        config = self.state.project.config_file
        started = time.monotonic()
        if config is not None and self._project_saved(paths):
            self._reload_project(config)
        functions = self.state.engine.functions
        # Each function loads at once and is reported as it ends: one whose top-level code
        # runs long (a loop being typed) holds no other one to its time limit. (Read after
        # the project: a pfunc.toml saved with them may name other functions.)
        await asyncio.gather(
            *(
                self._reload_function(functions.executor(function), function.file, paths, started)
                for function in self._reloaded_by(paths)
            )
        )

    async def _reload_function(
        self, executor: Executor, file: Path, paths: set[Path], started: float
    ) -> None:
        if executor.pool.unchanged():  # saved as it was: the version serving stays
            event = {"type": "reload", "file": executor.display_path, "ok": True}
            self.state.log({**event, "unchanged": True, "ms": _ms_since(started)})
            return
        slow = asyncio.get_running_loop().call_later(
            SLOW_LOAD_SECONDS,
            self.state.log,
            {"type": "reload-slow", "file": executor.display_path, "seconds": SLOW_LOAD_SECONDS},
        )
        try:
            failure = await executor.reload()
        finally:
            slow.cancel()
        serving = failure is None or await _still_loads(executor)
        self._report(
            executor.display_path,
            failure,
            started,
            serving,
            _partly_serving(file, paths) if failure and serving else [],
        )

    def _reload_project(self, config: Path) -> None:
        started = time.monotonic()
        event: dict[str, Any] = {"type": "reload", "file": str(config)}
        try:
            project = parse_project(config)
            # Read by every execution: the new [vault] (and .env, PFUNC_VAULT_*) and
            # [[mocks]] serve the next one; a .env that cannot be read changes nothing.
            vault = load_secrets(project, dict(os.environ))
        except PfuncUsageError as error:
            self.state.log({**event, "ok": False, "error": str(error), "ms": _ms_since(started)})
            return
        runtime = self.state.engine.runtime
        self.state.engine.functions.replace_project(project)
        problems = self.state.engine.functions.read_sources()
        runtime.vault = vault
        runtime.mocks = list(project.mocks)
        self.on_project()
        # A function whose file is missing is served (it may be about to be created), and
        # said at once, not at its first request.
        missing = [function for function in project.functions if not function.file.is_file()]
        warnings = [
            f'function "{function.name}": {function.file} does not exist; its executions '
            "fail until you create it"
            for function in missing
        ]
        # And one that cannot be read (not UTF-8) or load (its syntax, with a code frame).
        absent = {function.name for function in missing}
        warnings += [p.text for p in problems if not (p.unreadable and p.function in absent)]
        running_on = self._started
        if (running_on.limits, running_on.limit_overrides) != (
            project.limits,
            project.limit_overrides,
        ):
            warnings.append(
                "[limits] changed: the running server keeps the limits it started with "
                "(its sandboxes are built for them); restart pfunc dev to apply the new ones"
            )
        started_with = (running_on.keyset, running_on.secret_key, running_on.kv_path)
        if started_with != (project.keyset, project.secret_key, project.kv_path):
            warnings.append(
                "the keys or kv changed: the running server keeps the keyset, secret key "
                "and store it started with (clients on new keys are refused); restart "
                "pfunc dev to apply them"
            )
        self.state.log(
            {
                **event,
                "ok": True,
                "functions": describe_functions(self.state),
                "warnings": warnings,
                "ms": _ms_since(started),
            }
        )

    def _report(
        self,
        file: str,
        failure: HandlerLoadError | None,
        started: float,
        serving: bool,
        warnings: list[str],
    ) -> None:
        event: dict[str, Any] = {
            "type": "reload",
            "file": file,
            "ok": failure is None,
            "serving": serving,  # a version of the function serves (the new or an older one)
            "warnings": warnings,
            "ms": _ms_since(started),
        }
        if failure is not None:
            event["error"] = failure.message
            event["error_type"] = failure.error_type
            event["line"] = failure.line
            event["column"] = failure.column
        self.state.log(event)


def _partly_serving(file: Path, saved: set[Path]) -> list[str]:
    """What a failed reload of a Python function leaves serving when a .py file other
    than its own was saved (a module it imports, which may be what now fails): its workers
    already loaded run the last good version, but a new one, started for a concurrent
    request, runs that version's source against the modules as they are on disk now.
    (When only its own file was saved, a new worker runs the last good source, which
    imports what it always did.)"""
    if file.suffix != ".py":
        return []  # JavaScript keeps the last good source whole, in memory
    if not any(path.suffix == ".py" and not _same(path, file) for path in saved):
        return []  # only its own file: a new worker runs the last good source
    return [
        "only the workers already loaded serve the last good version: a worker started "
        "for a concurrent request imports the modules as saved, and fails until they load"
    ]


async def _still_loads(executor: Executor) -> bool:
    """After a failed reload: does the version the pool holds load (is any serving)?"""
    try:
        sandbox = await executor.pool.acquire()
    except Exception:  # the older source does not load either
        return False
    executor.pool.release(sandbox)
    return True


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def _ms_since(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 1)
