"""pfunc's own endpoints and console: run any function by hand (POST /pfunc/run/NAME, or
`run NAME [JSON]` typed into the dev server's standard input), publish from the console,
and the status of the project's functions."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from pfunc import jsonio
from pfunc.channels import name_problem
from pfunc.errors import PfuncUsageError
from pfunc.events import INTERVAL, KINDS, REQUEST, EventSpec, build_event
from pfunc.result import Result, shortened
from pfunc.server.guards import no_other_site
from pfunc.server.state import DevState
from pfunc.server.wire import pubnub_error

CONSOLE_HELP = (
    "commands: run NAME [JSON] | publish CHANNEL JSON | fire CHANNEL JSON | signal CHANNEL JSON"
)


class FunctionNotFound(LookupError):
    pass


class Admin:
    def __init__(self, state: DevState) -> None:
        self.state = state

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/pfunc/run/{name}", no_other_site(self.trigger)),
            web.get("/pfunc/status", no_other_site(self.status)),
        ]

    async def trigger(self, request: web.Request) -> web.Response:
        """Run any function by hand: POST /pfunc/run/NAME with an optional JSON body that
        describes the event as an EventSpec ({"message": ..., "channel": ...} for message
        functions, {"method", "path", "query", "headers", "body"} for on-request ones,
        {"action", "uuid", "occupancy", "state"} for after-presence ones)."""
        try:
            text = (await request.read()).decode("utf-8")
        except UnicodeDecodeError:
            return pubnub_error(400, "the event must be UTF-8 JSON")
        try:
            result = await self.run_by_hand(request.match_info["name"], text)
        except FunctionNotFound as error:
            return pubnub_error(404, str(error))
        except PfuncUsageError as error:
            return pubnub_error(400, str(error))
        return web.json_response(result.to_json())

    async def run_by_hand(self, name: str, spec_text: str) -> Result:
        """Run function NAME with the event that optional JSON describes (see trigger)."""
        project = self.state.project
        function = project.function(name)
        if function is None:
            names = ", ".join(f.name for f in project.functions)
            raise FunctionNotFound(f"no function named {name!r}; functions: {names}")
        try:
            data = jsonio.loads(spec_text) if spec_text.strip() else {}
        except ValueError as error:
            raise PfuncUsageError(f"the event must be JSON: {error}") from None
        if not isinstance(data, dict):
            raise PfuncUsageError("the event must be a JSON object")
        channel = data.get("channel")  # one no client could publish on: as pfunc run refuses it
        if isinstance(channel, str) and (problem := name_problem(channel)):
            raise PfuncUsageError(f"channel {channel!r}: {problem}")
        event = build_event(
            KINDS[function.event],
            EventSpec.from_mapping(data),
            default_channel=function.default_channel,
            now_ms=self.state.engine.runtime.clock.now_ms(),
        )
        return await self.state.engine.functions.executor(function).run(event)

    async def console_line(self, raw: bytes) -> None:
        """A line of the dev server's standard input: a command, if it is UTF-8 text (its
        bytes otherwise reached handlers and the console's stream as lone surrogates)."""
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            shown = shortened(raw.decode("utf-8", "replace").strip(), 200)
            error = "the line is not UTF-8 text; type it as UTF-8"
            self.state.log({"type": "console-error", "command": shown, "error": error})
            return
        await self.console_command(line)

    def console_line_too_long(self, most: int) -> None:
        """A console line past `most` bytes, which the reader did not keep (serve.py)."""
        error = f"the line is longer than {most:,} bytes; a command is a name and some JSON"
        self.state.log({"type": "console-error", "command": "", "error": error})

    async def console_command(self, line: str) -> None:
        """A command typed into the dev server's console (its standard input)."""
        words = line.strip().split(maxsplit=2)
        if not words:
            return
        try:
            if words[0] == "run" and len(words) >= 2:
                await self.run_by_hand(words[1], words[2] if len(words) > 2 else "")
            elif words[0] in ("publish", "fire", "signal") and len(words) == 3:
                try:
                    message = jsonio.loads(words[2])
                except ValueError as error:
                    raise PfuncUsageError(f"the message must be JSON: {error}") from None
                problem = name_problem(words[1])
                if problem:
                    raise PfuncUsageError(f"channel {words[1]!r}: {problem}")
                report = await self.state.bus.publish(words[1], message, verb=words[0])
                if not report.executions:  # no function's line says what became of it
                    self.state.log(
                        {
                            "type": "console-published",
                            "verb": words[0],
                            "channel": words[1],
                            "timetoken": report.timetoken,
                            "dropped": report.drop.message if report.drop else None,
                        }
                    )
            else:
                raise PfuncUsageError(CONSOLE_HELP)
        except Exception as error:  # a mistake in the line, or a fault of pfunc's own: said
            mistake = isinstance(error, FunctionNotFound | PfuncUsageError)
            said = shortened(str(error) if mistake else repr(error), 1000)
            command = shortened(line.strip(), 200)
            self.state.log({"type": "console-error", "command": command, "error": said})

    async def status(self, request: web.Request) -> web.Response:
        return web.json_response({"functions": describe_functions(self.state)})


def describe_functions(state: DevState) -> list[dict[str, Any]]:
    keyset = state.engine.runtime.keyset
    out = []
    for function in state.project.functions:
        family = KINDS[function.event].family
        entry: dict[str, Any] = {
            "name": function.name,
            "event": function.event,
            "file": str(function.file),
        }
        if family == REQUEST:
            entry["url"] = f"/v1/blocks/sub-key/{keyset.subscribe_key}/{function.path}"
        elif family == INTERVAL:
            entry["interval"] = function.interval
        else:
            entry["channels"] = function.channels
        out.append(entry)
    return out
