"""The dev console: its page (GET /, assets under /pfunc/console/), its live stream of
executions (server-sent events), the functions' states, "save as scenario", and
`pfunc dev --record`. Its KV endpoints are in console_kv.py.

The console answers loopback clients only, and only requests from its own page: a site
open in the same browser cannot drive it (the dev server's CORS answers any origin for
the PubNub API, which SDKs in other pages need; the console needs none of that).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from pfunc import jsonio
from pfunc.code_frames import code_frame, error_frame
from pfunc.errors import HandlerLoadError, PfuncUsageError
from pfunc.events import KINDS
from pfunc.project import display_path
from pfunc.result import Result
from pfunc.server.admin import describe_functions
from pfunc.server.console_hub import ConsoleHub, Entry
from pfunc.server.guards import console_only
from pfunc.server.kv_observer import ObservedKVStore
from pfunc.server.log_stream import publish_logs
from pfunc.server.state import DevState
from pfunc.server.wire import pubnub_error

if TYPE_CHECKING:
    from pfunc.testing.capture import Captured

ASSETS = Path(__file__).parent / "console"
ASSET_TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".html": "text/html",
    ".png": "image/png",
}
KEEPALIVE_SECONDS = 15.0
# Console pages open at once: each holds a stream; more are refused (a page reconnects).
MAX_PAGES = 32
REFUSED_RETRY_MS = 5000  # how soon a refused page tries again
RECONNECT_MS = 500  # how soon a page tries again when the stream ends
RECORD_QUEUE = 1000  # executions --record may fall behind by before it skips some


LOAD_ERROR_FIELDS = ("error", "error_type", "line", "column")  # of a failed reload
LOAD_WAIT_SECONDS = 1.0  # how long the functions list waits for loads not known yet


class Console:
    def __init__(self, state: DevState) -> None:
        self.state = state
        self.hub = ConsoleHub()
        self.states: dict[str, dict[str, Any]] = {}  # display path -> load state
        self._loading: dict[str, asyncio.Future[dict[str, Any]]] = {}  # loads under way
        self._said_loading: set[str] = set()  # listed as "loading": told when known
        self._epochs: dict[str, int] = {}  # bumped when a reload sets or drops a state
        self.project_error: str | None = None  # why the last pfunc.toml saved did not load
        self._closed = asyncio.Event()
        self._record: asyncio.Queue[Entry] | None = None
        runtime = state.engine.runtime
        runtime.observers.append(self.hub.add_result)
        runtime.observers.append(lambda result: publish_logs(state, result))
        runtime.modules["kvstore"] = ObservedKVStore(lambda: self.hub.capturing)
        self.hub.frame_of = self._frame

    def _frame(self, result: Result) -> str | None:
        """The code frame of an execution's error, as `pfunc run` shows it."""
        return error_frame(result, self.state.project.root) or None

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/", console_only(self.page)),
            web.get("/pfunc/console/assets/{name:[A-Za-z0-9_.-]+}", console_only(self.asset)),
            web.get("/pfunc/console/stream", console_only(self.stream)),
            web.get("/pfunc/console/functions", console_only(self.functions)),
            web.post("/pfunc/console/scenario", console_only(self.save_scenario)),
        ]

    def close(self) -> None:
        """End the open streams (the server is stopping)."""
        self._closed.set()
        for client in self.hub.clients:
            client.wake.set()

    def on_log(self, event: dict[str, Any]) -> None:
        """The dev log's events the console shows too."""
        kind = event.get("type")
        if kind in ("not-emulated", "unrouted"):
            self.hub.add_request(event)
        elif kind == "reload" and Path(event["file"]).name == "pfunc.toml":
            self.project_error = None if event["ok"] else event.get("error")
            if event["ok"]:
                self._forget_unbound()
                for path in list(self._loading):  # its executor may be another one now
                    self._epochs[path] = self._epochs.get(path, 0) + 1
            self.hub.note("reload", json.dumps(event, default=str))
        elif kind == "reload" and event.get("unchanged"):
            pass  # saved as it was: the version loaded serves on, its load time with it
        elif kind == "reload":
            now = int(time.time() * 1000)
            # loaded_at is the serving version's; a failed save keeps it when it serves on.
            previous = self.states.get(event["file"], {}).get("loaded_at")
            self._epochs[event["file"]] = self._epochs.get(event["file"], 0) + 1
            self.states[event["file"]] = (
                {"state": "loaded", "loaded_at": now}
                if event["ok"]
                else {
                    "state": "failed",
                    "failed_at": now,
                    "serving": bool(event.get("serving")),
                    "loaded_at": previous if event.get("serving") else None,
                    **{k: event[k] for k in LOAD_ERROR_FIELDS if k in event},
                }
            )
            self.hub.note("reload", json.dumps(event, default=str))

    def _forget_unbound(self) -> None:
        """Drop the load states of files no function uses now: nothing reloads such a
        file when it is saved, so a state kept for it would be stale when a function uses
        it again (a function taken out of pfunc.toml and put back after its file changed)."""
        bound = self._bound_paths()
        for path in [path for path in self.states if path not in bound]:
            del self.states[path]

    def _bound_paths(self) -> set[str]:
        """The display paths of the files the project's functions run."""
        return {display_path(f.file, self.state.project) for f in self.state.project.functions}

    # --- the page -------------------------------------------------------------------

    async def page(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(ASSETS / "index.html", headers={"Cache-Control": "no-cache"})

    async def asset(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        path = ASSETS / name
        if not path.is_file() or path.suffix not in ASSET_TYPES:
            return pubnub_error(404, f"no console asset {name}")
        return web.FileResponse(
            path, headers={"Content-Type": ASSET_TYPES[path.suffix], "Cache-Control": "no-cache"}
        )

    # --- the live stream ------------------------------------------------------------

    async def stream(self, request: web.Request) -> web.StreamResponse:
        """Server-sent events: the kept entries first (one "backlog" event), then each
        execution, KV change and reload as it happens."""
        client = self.hub.connect()  # counted at once: pages opening together are counted
        # The backlog as it is now, with the page connected and no await between: what
        # arrives from here on is its live events, never both (held weakly, so that what
        # the hub lets go meanwhile is let go, and skipped, here too).
        backlog = [weakref.ref(entry) for entry in self.hub.entries]
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        try:
            await response.prepare(request)
            if len(self.hub.clients) > MAX_PAGES:
                # Said as an event, then closed: a page's EventSource tries again after
                # `retry` (a refused answer would have stopped it for good).
                refused = json.dumps(f"the console is open in {MAX_PAGES} pages already")
                event = f"retry: {REFUSED_RETRY_MS}\nevent: refused\ndata: {refused}\n\n"
                await response.write(event.encode())
                return response
            # retry: a page reconnects within a second of a restarted server (browsers
            # wait ~3 s by default).
            await response.write(f"retry: {RECONNECT_MS}\nevent: backlog\ndata: [".encode())
            # Written entry by entry, from the texts every page shares: each write waits
            # while the page is behind, so a page that does not read holds one entry's
            # bytes, not its own copy of a backlog of up to 64 MiB.
            written = 0
            for held in backlog:
                entry = held()
                if entry is not None:
                    await response.write(f"{',' if written else ''}{entry.text()}".encode())
                    written += 1
                del entry
            await response.write(b"]\n\n")
            while not self._closed.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(client.wake.wait(), KEEPALIVE_SECONDS)
                client.wake.clear()
                events = list(client.queue)
                client.queue.clear()
                if client.dropped:
                    events.insert(0, ("dropped", str(client.dropped)))
                    client.dropped = 0
                for kind, text in events or [("", "")]:
                    chunk = f"event: {kind}\ndata: {text}\n\n" if kind else ": keep-alive\n\n"
                    await response.write(chunk.encode())
        except (ConnectionError, RuntimeError):
            pass  # the page went away
        finally:
            self.hub.disconnect(client)
        return response

    # --- functions ------------------------------------------------------------------

    async def functions(self, request: web.Request) -> web.Response:
        described = []
        functions = self.state.project.functions
        listed = list(zip(describe_functions(self.state), functions, strict=True))
        executors = [self.state.engine.functions.executor(function) for _, function in listed]
        # Loads not known yet run side by side, and the page is answered within a second:
        # one whose top-level code runs long is "loading", and its state is sent (as a
        # reload) when it ends, rather than holding the list to its time limit.
        for e in executors:
            if e.display_path not in self.states and e.display_path not in self._loading:
                self._loading[e.display_path] = asyncio.ensure_future(self._load_state(e))
        loads = {
            self._loading[e.display_path]
            for e in executors
            if e.display_path in self._loading and e.display_path not in self.states
        }
        if loads:  # (an earlier listing's too: answered as this one's)
            await asyncio.wait(loads, timeout=LOAD_WAIT_SECONDS)
        for (entry, function), executor in zip(listed, executors, strict=True):
            state = self.states.get(executor.display_path)
            if state is None:
                state = {"state": "loading"}
                self._said_loading.add(executor.display_path)
            if state.get("line"):
                frame = code_frame(function.file, state["line"], state.get("column") or 1)
                state = {**state, "frame": frame or ""}
            row = KINDS[function.event]
            described.append(
                {
                    **entry,
                    "file": executor.display_path,
                    "family": row.family,
                    "trigger": row.trigger,
                    "default_channel": function.default_channel,
                    **state,
                }
            )
        return web.json_response(
            {
                "functions": described,
                "keyset": self._keyset(),
                "project_error": self.project_error,
            }
        )

    async def _load_state(self, executor: Any) -> dict[str, Any]:
        """Whether the function's current source loads (as its next execution would); the
        open pages are told once it is known."""
        path = executor.display_path
        epoch = self._epochs.get(path, 0)
        try:
            state = await self._try_load(executor)
            # A reload that ended meanwhile (or a pfunc.toml that dropped the function) knows
            # better than a load of the source this one started with.
            if epoch == self._epochs.get(path, 0) and path in self._bound_paths():
                self.states[path] = state
            return state
        finally:
            self._loading.pop(path, None)
            if path in self._said_loading:  # a page listed it loading
                self._said_loading.discard(path)
                self.hub.note("reload", json.dumps({"type": "load-state"}))

    async def _try_load(self, executor: Any) -> dict[str, Any]:
        try:
            sandbox = await executor.pool.acquire()
        except HandlerLoadError as failure:
            state = {
                "state": "failed",
                "failed_at": int(time.time() * 1000),
                "error": failure.message,
                "error_type": failure.error_type,
                "line": failure.line,
                "column": failure.column,
            }
        else:
            executor.pool.release(sandbox)
            since = executor.pool.loaded_since  # when it first loaded, not when asked
            state = {"state": "loaded", "loaded_at": since or int(time.time() * 1000)}
        return state

    def _keyset(self) -> dict[str, str]:
        keyset = self.state.engine.runtime.keyset
        return {"subscribe_key": keyset.subscribe_key, "publish_key": keyset.publish_key}

    # --- scenarios ------------------------------------------------------------------

    async def save_scenario(self, request: web.Request) -> web.Response:
        try:
            body = jsonio.loads(await request.read() or b"{}")
        except (ValueError, UnicodeDecodeError):
            return pubnub_error(
                400, 'the body must be JSON: {"id": N, "file": "tests/x.test.toml"}'
            )
        if not isinstance(body, dict) or not isinstance(body.get("id"), int):
            return pubnub_error(400, 'say which execution: {"id": N}')
        entry = self.hub.find(body["id"])
        if entry is None or entry.result is None:
            return pubnub_error(404, f"no execution {body['id']} is kept any more")
        try:
            target = self.scenario_file(body.get("file", "tests/saved.test.toml"))
            name = body.get("name") or None  # none given: the default name
            if name is not None and not isinstance(name, str):
                raise PfuncUsageError("name must be text")
            saved = await self._capture(entry, target, name)
        except PfuncUsageError as error:
            return pubnub_error(400, str(error))
        root = self.state.project.root
        return web.json_response(
            {
                "file": str(saved.path.relative_to(root)),
                "name": saved.name,
                "relaxed": saved.relaxed,
                "text": saved.text,
            }
        )

    async def _capture(self, entry: Entry, target: Path, name: str | None = None) -> Captured:
        """The execution as a scenario in `target` (save as scenario, --record), refused
        unless it ran the project's files as they are now (its check replays them)."""
        from pfunc.testing.capture import capture  # the test runner: only when saving

        assert entry.result is not None
        data = entry.to_json()
        ran_from = entry.at_ms - entry.result.duration_ms
        replay = capture(
            data, target, name or default_name(data), lambda: self.state.ran_current_code(ran_from)
        )
        # Off the server's loop: the replay runs the handler in an engine of its own, whose
        # JavaScript runs on the calling thread and whose Python worker is waited for on it
        # (on the loop, a runaway's replay held every request, and Ctrl-C, to its limit).
        # A thread of the sandboxes' kind: QuickJS needs its stack (threads.py).
        from pfunc.sandbox.threads import SandboxThread

        home = SandboxThread()
        replaying = home.submit(replay)
        replaying.add_done_callback(lambda _: home.close())
        return await asyncio.wrap_future(replaying)

    def scenario_file(self, given: Any) -> Path:
        """A *.test.toml file inside the project; nothing else may be written."""
        if not isinstance(given, str) or not given.endswith(".test.toml") or "\0" in given:
            raise PfuncUsageError(
                "file must be a path ending in .test.toml, e.g. tests/saved.test.toml"
            )
        root = self.state.project.root.resolve()
        target = (root / given).resolve()
        if not target.is_relative_to(root):
            raise PfuncUsageError(f"file must be inside the project ({root})")
        return target

    # --- pfunc dev --record ---------------------------------------------------------

    def record(self, target: Path) -> None:
        """Save every execution a client caused as a scenario in `target`."""
        self._record = asyncio.Queue(RECORD_QUEUE)
        queue = self._record

        def enqueue(entry: Entry) -> None:
            result = entry.result
            if result is None or result.hop != 1 or result.name is None:
                return  # chained executions replay as part of their parent
            try:
                queue.put_nowait(entry)
            except asyncio.QueueFull:
                self.state.log(
                    {
                        "type": "record-error",
                        "error": "--record fell behind; an execution was not saved",
                    }
                )

        self.hub.recorders.append(enqueue)
        self.state.spawn(self._recording(target, queue))

    async def _recording(self, target: Path, queue: asyncio.Queue[Entry]) -> None:
        while True:
            entry = await queue.get()
            try:
                await self._record_one(entry, target)
            finally:
                queue.task_done()

    async def recorded(self) -> None:
        """Once --record has saved every execution it was given (at a stop)."""
        if self._record is not None:
            await self._record.join()

    async def _record_one(self, entry: Entry, target: Path) -> None:
        try:
            saved = await self._capture(entry, target)
        except PfuncUsageError as error:
            self.state.log({"type": "record-error", "error": str(error)})
        except Exception as error:  # a fault of pfunc's own: say so, keep recording
            self.state.log({"type": "record-error", "error": repr(error)})
        else:
            self.state.log(
                {
                    "type": "recorded",
                    "file": str(target),
                    "name": saved.name,
                    "relaxed": saved.relaxed,
                }
            )


def default_name(entry: dict[str, Any]) -> str:
    result, event = entry["result"], entry.get("event") or {}
    where = event.get("channel") or f"{event.get('method', '')} {event.get('path', '')}".strip()
    moment = time.strftime("%H:%M:%S", time.localtime(entry["at"] / 1000))
    return f"{result.get('name')}: {event.get('kind')} {where} at {moment} (#{entry['id']})"
