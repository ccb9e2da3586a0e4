"""`pfunc dev`'s HTTP application: the route table, the middleware that keeps every
answer in PubNub's shape, and the background tasks (intervals, presence timeouts).

Each area is a file of its own: pubnub_api (PubNub's REST API), blocks (on-request
functions), admin (pfunc's trigger, status and console); state holds what they share.
Nothing a request does takes the server down: a fault answers 500 and is logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from pfunc.aio import kept_done, start_kept
from pfunc.engine import Engine
from pfunc.events import EventSpec, build_event, kinds_triggered_by
from pfunc.project import FunctionConfig
from pfunc.server.access_api import AccessAPI
from pfunc.server.access_guard import AccessGuard
from pfunc.server.actions_api import ActionsAPI
from pfunc.server.admin import Admin
from pfunc.server.blocks import Blocks, not_found
from pfunc.server.console_api import Console
from pfunc.server.console_kv import ConsoleKV
from pfunc.server.files_api import FilesAPI
from pfunc.server.groups_api import GroupsAPI
from pfunc.server.history_api import HistoryAPI
from pfunc.server.jsonp import jsonp
from pfunc.server.not_emulated import not_emulated, not_emulated_answer
from pfunc.server.objects_api import ObjectsAPI
from pfunc.server.presence_api import PresenceAPI
from pfunc.server.pubnub_api import PubNubAPI, interval_events, presence_event, publish_error
from pfunc.server.push_api import PushAPI
from pfunc.server.reload import ProjectReloader
from pfunc.server.request_limits import RequestLimits
from pfunc.server.state import SUBSCRIBE_TIMEOUT, DevState, LogEvent
from pfunc.server.wire import pubnub_error

MAX_REQUEST_BYTES = 1024 * 1024  # larger bodies are refused before they are read


class DevServer:
    def __init__(
        self,
        engine: Engine,
        *,
        on_event: LogEvent,
        intervals: bool = True,
        subscribe_timeout: float = SUBSCRIBE_TIMEOUT,
    ) -> None:
        self.state = DevState(engine, self._log, subscribe_timeout)
        self._on_event = on_event
        self.console = Console(self.state)  # the web console, at the root URL
        self.console_kv = ConsoleKV(self.state, self.console)
        self.intervals = intervals
        self.admin = Admin(self.state)
        self.blocks = Blocks(self.state)
        self.pubnub = PubNubAPI(self.state)
        self.history = HistoryAPI(self.state)
        self.presence = PresenceAPI(self.state)
        self.actions = ActionsAPI(self.state)
        self.groups = GroupsAPI(self.state)
        self.push = PushAPI(self.state)
        self.objects = ObjectsAPI(self.state)
        self.access = AccessAPI(self.state)
        self.access_guard = AccessGuard(self.state)
        self.files = FilesAPI(self.state)
        self.limits = RequestLimits(self.state.log)
        self.reloader = ProjectReloader(self.state, on_project=self._restart_intervals)
        self._tasks: list[asyncio.Task[Any]] = []
        # (name, file, kind, interval) -> its timer: a pfunc.toml save that leaves a
        # function's schedule as it was leaves its timer running (a restart skipped a run).
        self._interval_tasks: dict[tuple[Any, ...], asyncio.Task[Any]] = {}

    def app(self) -> web.Application:
        app = web.Application(
            client_max_size=MAX_REQUEST_BYTES,
            # Access Manager's check runs inside the error handler: a fault there answers 500.
            middlewares=[
                self._cors,
                jsonp,
                self._errors,
                self.limits.body_deadline,
                self.limits.decodable_path,
                self.access_guard.middleware,
            ],
        )
        areas = (
            self.pubnub,
            self.presence,
            self.history,
            self.actions,
            self.groups,
            self.push,
            self.objects,
            self.access,
            self.files,
            self.blocks,
            self.admin,
            self.console,
            self.console_kv,
        )
        for area in areas:
            app.router.add_routes(_any_segment(route) for route in area.routes())
        app.on_startup.append(self._start_background)
        # On shutdown, before aiohttp waits for requests in flight: end the long-polls, or
        # Ctrl-C would wait out every subscriber's poll.
        app.on_shutdown.append(self._end_long_polls)
        app.on_cleanup.append(self._stop_background)
        return app

    def _log(self, event: dict[str, Any]) -> None:
        """The dev log, which the console also shows."""
        self._on_event(event)
        self.console.on_log(event)

    def files_changed(self, paths: set[Path]) -> Awaitable[None]:
        return self.reloader.files_changed(paths)  # the reload, as it is fired

    async def console_command(self, line: str) -> None:
        await self.admin.console_command(line)

    async def console_line(self, raw: bytes) -> None:
        await self.admin.console_line(raw)

    async def console_line_too_long(self, most: int) -> None:
        self.admin.console_line_too_long(most)

    @web.middleware
    async def _cors(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """CORS on every endpoint, so a browser app served from another origin works: a
        preflight is answered here; every answer names the asking origin."""
        origin = request.headers.get("Origin", "*")
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            asked = request.headers.get("Access-Control-Request-Headers", "")
            allowed = {
                "Access-Control-Allow-Origin": origin,
                "Access-Control-Allow-Methods": "GET, POST, PUT, PATCH, DELETE, OPTIONS",
                "Access-Control-Allow-Headers": asked or "*",
                "Access-Control-Max-Age": "600",
                "Vary": "Origin",
            }
            if origin != "*":  # a credentialed request may follow: its answer decides
                allowed["Access-Control-Allow-Credentials"] = "true"
            return web.Response(status=204, headers=allowed)
        response = await handler(request)
        response.headers.setdefault("Access-Control-Allow-Origin", origin)
        response.headers.setdefault("Access-Control-Expose-Headers", "*")
        if origin != "*":
            response.headers.setdefault("Vary", "Origin")
        return response

    @web.middleware
    async def _errors(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPRequestEntityTooLarge:
            if request.path.startswith(("/publish/", "/signal/")):  # as one past 32 KiB is
                return publish_error(413, "Message Too Large", self.state.timetoken())
            return pubnub_error(
                413, f"Request Entity Too Large: the limit is {MAX_REQUEST_BYTES:,} bytes"
            )
        except (web.HTTPNotFound, web.HTTPMethodNotAllowed) as missing:
            what = not_emulated(request.method, request.path)
            if what is not None:
                self.state.log(
                    {
                        "type": "not-emulated",
                        "what": what,
                        "method": request.method,
                        "path": request.path,
                    }
                )
                return not_emulated_answer(what, request.method, request.path)
            if isinstance(missing, web.HTTPMethodNotAllowed):
                refused = pubnub_error(405, f"{request.method} is not allowed on {request.path}")
                refused.headers["Allow"] = ", ".join(sorted(missing.allowed_methods))
                return refused
            return not_found(self.state, request.method, request.path)
        except web.HTTPException as error:
            return pubnub_error(error.status, error.reason)
        except web.RequestPayloadError as error:  # a body its Content-Encoding cannot decode
            text = " ".join(str(error).split())
            self.state.log({"type": "bad-request", "error": f"{request.path}: {text}"})
            error.pfunc_logged = True  # type: ignore[attr-defined]  # (aiohttp logs it too)
            return pubnub_error(400, f"Invalid request body: {text}")
        except ConnectionResetError:
            # The client left mid-body: no one reads this answer, and it is not pfunc's fault.
            return pubnub_error(400, "the client closed the connection before its body arrived")
        except Exception as error:  # a fault of pfunc's own: answer, log, keep serving
            self.state.log({"type": "server-error", "path": request.path, "error": repr(error)})
            return pubnub_error(500, f"pfunc could not handle this request: {error}")

    # --- background tasks ---------------------------------------------------------------

    async def _start_background(self, app: web.Application) -> None:
        self._tasks.append(asyncio.ensure_future(self._presence_timeouts()))
        self._restart_intervals()

    async def _end_long_polls(self, app: web.Application) -> None:
        # What requests started (after-* functions run on their own) ends first, so that
        # subscribers and the console's live view still see it.
        await kept_done()
        self.state.messages.close()
        self.console.close()

    async def _stop_background(self, app: web.Application) -> None:
        # The requests are done: what they started (after-* functions run on their own,
        # publishes under way) ends first, and --record saves what it was given, before
        # the background stops.
        await kept_done()
        await self.console.recorded()
        tasks = [*self._tasks, *self._interval_tasks.values(), *self.state.background()]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def _restart_intervals(self) -> None:
        interval_kinds = {kind.name for kind in kinds_triggered_by("interval")}
        wanted = {
            (function.name, function.file, function.event, function.interval): function
            for function in self.state.project.functions
            if self.intervals and function.event in interval_kinds and function.interval
        }
        for key in [key for key in self._interval_tasks if key not in wanted]:
            self._interval_tasks.pop(key).cancel()  # gone, or its schedule changed
        for key, function in wanted.items():
            if key not in self._interval_tasks:
                self._interval_tasks[key] = asyncio.ensure_future(self._every(function))

    async def _every(self, function: FunctionConfig) -> None:
        assert function.interval is not None
        while True:
            await asyncio.sleep(function.interval)
            current = self.state.project.function(function.name)
            if current is None:
                return
            # Kept: a saved pfunc.toml that changes the schedule (or a stop) cancels the
            # schedule, never an execution half-way; it ends, and is logged, as any.
            await start_kept(self._run_interval(current))

    async def _run_interval(self, function: FunctionConfig) -> None:
        try:
            event = build_event(function.event, EventSpec())
            await self.state.engine.functions.executor(function).run(event)
        except Exception as error:  # a fault of pfunc's own: log it, keep the schedule
            self.state.log({"type": "server-error", "path": "", "error": repr(error)})

    async def _presence_timeouts(self) -> None:
        """Every second: presence timeouts, and sandboxes idle since a burst closed."""
        while True:
            await asyncio.sleep(1)
            try:
                for channel, uuid in self.state.presence.expired():
                    presence_event(self.state, channel, "timeout", uuid)
                interval_events(self.state)
                self.state.engine.functions.trim_idle()
            except Exception as error:  # a fault of pfunc's own: log it, keep going
                self.state.log({"type": "server-error", "path": "", "error": repr(error)})


def _any_segment(route: web.RouteDef) -> web.RouteDef:
    """The route with each plain `{name}` taking any text up to the next `/`: aiohttp's
    own pattern for one leaves out `{` and `}`, which PubNub allows in channel, group
    and user names (a GUID written `{3F25...}`), so such a request met a 404. The
    resource's canonical form, which the access table is keyed by, stays the same."""
    path = re.sub(r"\{(\w+)\}", r"{\1:[^/]+}", route.path)
    return web.RouteDef(route.method, path, route.handler, route.kwargs)
