"""`pfunc dev`: the project's functions behind a local HTTP server (aiohttp).

It serves on-request functions at PubNub's URL shape, a PubNub-compatible REST subset
that the official SDKs can use (publish, fire, signal, subscribe v2, time, presence
heartbeat and leave), interval functions on their schedule, and a trigger endpoint.
Every error answers in PubNub's style; nothing here lets one request take the server
down, and handlers run on threads of their own so a runaway loop blocks nobody.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from pfunc.bus import Bus, PublishReport, run_presence
from pfunc.errors import HandlerLoadError, PfuncUsageError
from pfunc.events import VERB_OF_KIND, IntervalEvent, MessageEvent, RequestEvent
from pfunc.executor import Runtime
from pfunc.project import FunctionConfig, Project, parse_project
from pfunc.pubsub import MESSAGE_TYPES, Delivery, MessageLog, Presence
from pfunc.result import Result

MAX_REQUEST_BYTES = 1024 * 1024  # larger bodies are refused before they are read
SUBSCRIBE_TIMEOUT = 280.0  # seconds a subscribe long-poll waits, as PubNub's servers do


def _pubnub_error(status: int, message: str, service: str = "pfunc") -> web.Response:
    return web.json_response(
        {"status": status, "error": True, "message": message, "service": service}, status=status
    )


def _publish_error(status: int, message: str, timetoken: str) -> web.Response:
    # PubNub's publish answers errors as a non-200 status and [0, "description", timetoken].
    return web.json_response([0, message, timetoken], status=status)


class DevServer:
    """The HTTP side of `pfunc dev`: routes, subscribers, presence and intervals."""

    def __init__(
        self,
        runtime: Runtime,
        project: Project,
        *,
        on_event: Callable[[dict[str, Any]], None],
        intervals: bool = True,
        subscribe_timeout: float = SUBSCRIBE_TIMEOUT,
    ) -> None:
        self.runtime = runtime
        self.project = project
        self.on_event = on_event
        self.intervals = intervals
        self.subscribe_timeout = subscribe_timeout
        self.messages = MessageLog(project.keyset.subscribe_key)
        self.presence = Presence()
        self._tasks: list[asyncio.Task[Any]] = []
        self._interval_tasks: list[asyncio.Task[Any]] = []
        self._background: set[asyncio.Task[Any]] = set()
        self._attach_bus(runtime.bus or Bus(project))

    # --- wiring ----------------------------------------------------------------------

    def _attach_bus(self, bus: Bus) -> None:
        bus.attach(self.runtime)
        bus.listeners = [self._deliver]
        self.runtime.bus = bus

    def _deliver(self, report: PublishReport) -> None:
        self.messages.add(
            Delivery(
                int(report.timetoken or 0),
                report.channel,
                report.message,
                MESSAGE_TYPES.get(report.verb, 0),
                publisher=report.publisher,
                meta=report.meta,
            )
        )

    @property
    def bus(self) -> Bus:
        assert self.runtime.bus is not None
        return self.runtime.bus

    def app(self) -> web.Application:
        app = web.Application(
            client_max_size=MAX_REQUEST_BYTES, middlewares=[self._errors_middleware]
        )
        app.router.add_get("/time/0", self.time)
        app.router.add_route("*", "/publish/{pub}/{sub}/{sig}/{channel}/{callback}", self.publish)
        app.router.add_get(
            "/publish/{pub}/{sub}/{sig}/{channel}/{callback}/{message:.*}", self.publish
        )
        app.router.add_get(
            "/signal/{pub}/{sub}/{sig}/{channel}/{callback}/{message:.*}", self.signal
        )
        app.router.add_get("/v2/subscribe/{sub}/{channels}/{callback}", self.subscribe)
        app.router.add_get(
            "/v2/presence/sub-key/{sub}/channel/{channels}/heartbeat", self.heartbeat
        )
        app.router.add_get("/v2/presence/sub-key/{sub}/channel/{channels}/leave", self.leave)
        app.router.add_route("*", "/v1/blocks/sub-key/{sub}/{path:.*}", self.on_request)
        app.router.add_post("/pfunc/run/{name}", self.trigger)
        app.router.add_get("/pfunc/status", self.status)
        app.on_startup.append(self._start_background)
        app.on_cleanup.append(self._stop_background)
        return app

    @web.middleware
    async def _errors_middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPRequestEntityTooLarge:
            return _pubnub_error(
                413, f"Request Entity Too Large: the limit is {MAX_REQUEST_BYTES:,} bytes"
            )
        except web.HTTPNotFound:
            return self._not_found(request.path)
        except web.HTTPException as error:
            return _pubnub_error(error.status, error.reason)
        except Exception as error:  # a fault of pfunc's own: answer, log, keep serving
            self.on_event({"type": "server-error", "path": request.path, "error": repr(error)})
            return _pubnub_error(500, f"pfunc could not handle this request: {error}")

    def _not_found(self, path: str) -> web.Response:
        prefix = f"/v1/blocks/sub-key/{self.project.keyset.subscribe_key}/"
        paths = [prefix + (f.path or "") for f in self.project.functions if f.event == "on-request"]
        return web.json_response(
            {
                "status": 404,
                "error": True,
                "message": f"no function serves {path}",
                "service": "pfunc",
                "on_request_paths": paths,
            },
            status=404,
        )

    def _check_keys(self, request: web.Request) -> web.Response | None:
        keyset = self.project.keyset
        if request.match_info.get("sub") != keyset.subscribe_key:
            return _pubnub_error(400, "Invalid Subscribe Key")
        pub = request.match_info.get("pub")
        if pub is not None and pub != keyset.publish_key:
            return _publish_error(400, "Invalid Key", self.bus.next_timetoken())
        return None

    # --- time, publish, signal ----------------------------------------------------------

    async def time(self, request: web.Request) -> web.Response:
        return web.json_response([int(self.bus.next_timetoken())])

    async def publish(self, request: web.Request) -> web.Response:
        fire = request.query.get("store") == "0" and request.query.get("norep") == "true"
        return await self._publish(request, "fire" if fire else "publish")

    async def signal(self, request: web.Request) -> web.Response:
        return await self._publish(request, "signal")

    async def _publish(self, request: web.Request, verb: str) -> web.Response:
        refused = self._check_keys(request)
        if refused:
            return refused
        if request.method == "POST":
            text = await request.text()
        elif request.method == "GET":
            text = request.match_info.get("message", "")
        else:
            return _publish_error(405, "Method Not Allowed", self.bus.next_timetoken())
        try:
            message = json.loads(text)
        except ValueError:
            return _publish_error(400, "Invalid JSON", self.bus.next_timetoken())
        meta = None
        if "meta" in request.query:
            try:
                meta = json.loads(request.query["meta"])
            except ValueError:
                return _publish_error(400, "Invalid JSON in meta", self.bus.next_timetoken())
        report = await self.bus.publish(
            unquote(request.match_info["channel"]),
            message,
            verb=verb,
            meta=meta if isinstance(meta, dict) else None,
            params={k: v for k, v in request.query.items() if k in ("uuid", "pnsdk")},
        )
        if report.dropped:
            return _publish_error(
                413 if "bytes" in report.dropped else 400,
                "Message Too Large" if "bytes" in report.dropped else report.dropped,
                self.bus.next_timetoken(),
            )
        if not report.delivered:
            stopped = report.executions[-1] if report.executions else None
            why = (
                (stopped.abort_reason or "aborted")
                if stopped and stopped.outcome == "abort"
                else "the function failed"
            )
            return _publish_error(
                400,
                f'Message aborted by function "{report.stopped_by}": {why}',
                self.bus.next_timetoken(),
            )
        return web.json_response([1, "Sent", report.timetoken])

    # --- subscribe and presence ------------------------------------------------------------

    @staticmethod
    def _channels(request: web.Request) -> list[str]:
        return [unquote(c) for c in request.match_info["channels"].split(",") if c and c != ","]

    async def subscribe(self, request: web.Request) -> web.Response:
        refused = self._check_keys(request)
        if refused:
            return refused
        channels = self._channels(request)
        uuid = request.query.get("uuid") or "anonymous"
        heartbeat = _int(request.query.get("heartbeat"))
        for channel in channels:
            if not channel.endswith("-pnpres") and "*" not in channel:
                self._beat(channel, uuid, heartbeat)
        since = request.query.get("tt", "0")
        if since in ("0", ""):
            now = self.bus.next_timetoken()
            return web.json_response({"t": {"t": now, "r": 1}, "m": []})
        try:
            after = int(since)
        except ValueError:
            return _pubnub_error(400, f"Invalid timetoken {since!r}", "subscribe")
        found = await self.messages.wait(channels, after, self.subscribe_timeout)
        envelopes = [self.messages.envelope(delivery, match) for delivery, match in found]
        latest = max((delivery.timetoken for delivery, _ in found), default=after)
        return web.json_response({"t": {"t": str(latest), "r": 1}, "m": envelopes})

    async def heartbeat(self, request: web.Request) -> web.Response:
        refused = self._check_keys(request)
        if refused:
            return refused
        uuid = request.query.get("uuid") or "anonymous"
        for channel in self._channels(request):
            self._beat(channel, uuid, _int(request.query.get("heartbeat")))
        return web.json_response({"status": 200, "message": "OK", "service": "Presence"})

    async def leave(self, request: web.Request) -> web.Response:
        refused = self._check_keys(request)
        if refused:
            return refused
        uuid = request.query.get("uuid") or "anonymous"
        for channel in self._channels(request):
            if self.presence.leave(channel, uuid):
                self._presence_event(channel, "leave", uuid)
        return web.json_response(
            {"status": 200, "message": "OK", "action": "leave", "service": "Presence"}
        )

    def _beat(self, channel: str, uuid: str, heartbeat: int | None) -> None:
        if self.presence.beat(channel, uuid, heartbeat):
            self._presence_event(channel, "join", uuid)

    def _presence_event(self, channel: str, action: str, uuid: str) -> None:
        message = {
            "action": action,
            "uuid": uuid,
            "occupancy": self.presence.occupancy(channel),
            "timestamp": int(self.runtime.clock.now_ms() // 1000),
        }
        self.messages.add(Delivery(int(self.bus.next_timetoken()), f"{channel}-pnpres", message, 0))
        self._spawn(run_presence(self.bus, channel, message))

    def _spawn(self, work: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # --- on-request functions --------------------------------------------------------------

    def route(self, path: str) -> tuple[FunctionConfig, str] | None:
        """The on-request function serving `path` (after the sub-key), and the rest of it."""
        clean = path.strip("/")
        for function in self.project.functions:
            if function.event != "on-request" or function.path is None:
                continue
            pattern = function.path
            if clean == pattern or fnmatch.fnmatchcase(clean, pattern):
                return function, "/"
            if clean.startswith(pattern + "/") and "*" not in pattern:
                return function, "/" + clean[len(pattern) + 1 :]
            if pattern.endswith("/*") and clean.startswith(pattern[:-1]):
                return function, "/" + clean[len(pattern) - 1 :]
        return None

    async def on_request(self, request: web.Request) -> web.Response:
        if request.match_info["sub"] != self.project.keyset.subscribe_key:
            return _pubnub_error(400, "Invalid Subscribe Key", "blocks")
        path = request.match_info["path"]
        if ".." in path.split("/"):
            return _pubnub_error(400, "Invalid path: it may not climb out with ..", "blocks")
        found = self.route(path)
        if found is None:
            return self._not_found(request.path)
        function, rest = found
        event = RequestEvent(
            method=request.method,
            path=rest,
            query=dict(request.query),
            headers={name.lower(): value for name, value in request.headers.items()},
            body=await request.text(),
        )
        result = await self.bus.executor(function).run(event)
        if result.outcome != "response" or result.response is None:
            error = result.error.message if result.error else "the function did not respond"
            return _pubnub_error(500, f'function "{function.name}" failed: {error}', "blocks")
        response = result.response
        return web.Response(
            status=int(response["status"]), text=response["body"], headers=response["headers"]
        )

    # --- triggers, status, intervals ----------------------------------------------------------

    async def trigger(self, request: web.Request) -> web.Response:
        """Run any function by hand: POST /pfunc/run/NAME with an optional JSON body.

        Message functions take {"message": ..., "channel": ...}; on-request ones take
        {"method", "path", "query", "headers", "body"}; interval ones take nothing.
        """
        try:
            result = await self.run_by_hand(request.match_info["name"], await request.text())
        except LookupError as error:
            return _pubnub_error(404, str(error))
        except ValueError as error:
            return _pubnub_error(400, str(error))
        return web.json_response(result.to_json())

    async def run_by_hand(self, name: str, spec_text: str) -> Result:
        """Run function NAME with an event described by optional JSON (see trigger)."""
        function = self.project.function(name)
        if function is None:
            names = ", ".join(f.name for f in self.project.functions)
            raise LookupError(f"no function named {name!r}; functions: {names}")
        try:
            spec = json.loads(spec_text) if spec_text.strip() else {}
        except ValueError:
            raise ValueError("the event must be JSON") from None
        if not isinstance(spec, dict):
            raise ValueError("the event must be a JSON object")
        return await self.bus.executor(function).run(_event_for(function, spec))

    async def console_command(self, line: str) -> None:
        """A command typed into the dev server's console (its standard input).

        run NAME [JSON]          run a function, as POST /pfunc/run/NAME does
        publish CHANNEL JSON     publish through the project, as a client would
        """
        words = line.strip().split(maxsplit=2)
        if not words:
            return
        try:
            if words[0] == "run" and len(words) >= 2:
                await self.run_by_hand(words[1], words[2] if len(words) > 2 else "")
            elif words[0] in ("publish", "fire", "signal") and len(words) == 3:
                await self.bus.publish(words[1], json.loads(words[2]), verb=words[0])
            else:
                raise ValueError(
                    "commands: run NAME [JSON] | publish CHANNEL JSON | "
                    "fire CHANNEL JSON | signal CHANNEL JSON"
                )
        except (LookupError, ValueError) as error:
            self.on_event({"type": "console-error", "command": line.strip(), "error": str(error)})

    async def status(self, request: web.Request) -> web.Response:
        return web.json_response({"functions": self.describe_functions()})

    def describe_functions(self) -> list[dict[str, Any]]:
        keyset = self.project.keyset
        out = []
        for function in self.project.functions:
            entry: dict[str, Any] = {
                "name": function.name,
                "event": function.event,
                "file": str(function.file),
            }
            if function.event == "on-request":
                entry["url"] = f"/v1/blocks/sub-key/{keyset.subscribe_key}/{function.path}"
            elif function.event == "on-interval":
                entry["interval"] = function.interval
            else:
                entry["channels"] = function.channels
            out.append(entry)
        return out

    async def _start_background(self, app: web.Application) -> None:
        self._tasks.append(asyncio.ensure_future(self._presence_timeouts()))
        self._restart_intervals()

    async def _stop_background(self, app: web.Application) -> None:
        for task in [*self._tasks, *self._interval_tasks, *self._background]:
            task.cancel()
        for task in [*self._tasks, *self._interval_tasks, *self._background]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def _restart_intervals(self) -> None:
        for task in self._interval_tasks:
            task.cancel()
        self._interval_tasks = []
        if not self.intervals:
            return
        for function in self.project.functions:
            if function.event == "on-interval" and function.interval:
                self._interval_tasks.append(asyncio.ensure_future(self._every(function)))

    async def _every(self, function: FunctionConfig) -> None:
        assert function.interval is not None
        while True:
            await asyncio.sleep(function.interval)
            current = self.project.function(function.name)
            if current is None:
                return
            await self.bus.executor(current).run(IntervalEvent())

    async def _presence_timeouts(self) -> None:
        while True:
            await asyncio.sleep(1)
            for channel, uuid in self.presence.expired():
                self._presence_event(channel, "timeout", uuid)

    # --- reload ---------------------------------------------------------------------------

    async def files_changed(self, paths: set[Path]) -> None:
        """Hot reload: pfunc.toml first (keeping the last good one), then handler files."""
        config = self.project.config_file
        started = time.monotonic()
        if config is not None and any(_same(p, config) for p in paths):
            self._reload_project(config)
        for function in self.project.functions:
            if any(_same(p, function.file) for p in paths):
                executor = self.bus.executor(function)
                failure = await executor.reload()
                self._report_reload(executor.display_path, failure, started)

    def _reload_project(self, config: Path) -> None:
        started = time.monotonic()
        try:
            project = parse_project(config)
        except PfuncUsageError as error:
            self.on_event(
                {
                    "type": "reload",
                    "file": str(config),
                    "ok": False,
                    "error": str(error),
                    "ms": _ms_since(started),
                }
            )
            return
        old_bus = self.bus
        self.project = project
        bus = Bus(project)
        bus.adopt(old_bus)
        self._attach_bus(bus)
        self._restart_intervals()
        self.on_event(
            {
                "type": "reload",
                "file": str(config),
                "ok": True,
                "functions": self.describe_functions(),
                "ms": _ms_since(started),
            }
        )

    def _report_reload(self, file: str, failure: HandlerLoadError | None, started: float) -> None:
        event: dict[str, Any] = {
            "type": "reload",
            "file": file,
            "ok": failure is None,
            "ms": _ms_since(started),
        }
        if failure is not None:
            event["error"] = failure.message
            event["error_type"] = failure.error_type
            event["line"] = failure.line
            event["column"] = failure.column
        self.on_event(event)


def _event_for(function: FunctionConfig, spec: dict[str, Any]) -> Any:
    if function.event == "on-request":
        return RequestEvent(
            method=str(spec.get("method", "GET")).upper(),
            path=str(spec.get("path", "/")),
            query={str(k): str(v) for k, v in (spec.get("query") or {}).items()},
            headers={str(k).lower(): str(v) for k, v in (spec.get("headers") or {}).items()},
            body=spec["body"]
            if isinstance(spec.get("body"), str)
            else json.dumps(spec["body"])
            if "body" in spec
            else "",
        )
    if function.event == "on-interval":
        return IntervalEvent()
    channel = str(spec.get("channel") or function.default_channel)
    verb = VERB_OF_KIND.get(function.event, "publish")
    return MessageEvent(function.event, spec.get("message", {}), channel, verb=verb)


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text else None
    except ValueError:
        return None


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def _ms_since(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 1)


def execution_event(result: Result) -> dict[str, Any]:
    """One execution as the dev server logs it (a line, or an NDJSON object)."""
    event: dict[str, Any] = {
        "type": "execution",
        "time": time.strftime("%H:%M:%S"),
        "function": result.name or result.function,
        "file": result.function,
        "event": result.event,
        "outcome": result.outcome,
        "operations": {
            "used": result.operations.get("used", 0),
            "limit": result.operations.get("limit"),
        },
        "duration_ms": round(result.duration_ms, 2),
        "logs": result.logs,
        "warnings": result.warnings,
    }
    if result.channel is not None:
        event["channel"] = result.channel
    if result.path is not None:
        event["path"] = result.path
    if result.abort_reason is not None:
        event["abort_reason"] = result.abort_reason
    if result.error is not None:
        event["error"] = result.error.to_json()
    return event
