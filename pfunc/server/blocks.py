"""The on-request gateway: `/v1/blocks/sub-key/<subscribe-key>/<path>` to the function
whose path matches, its response as the HTTP answer."""

from __future__ import annotations

import fnmatch

from aiohttp import web
from multidict import CIMultiDict

from pfunc.events import KINDS, REQUEST, EventSpec, RequestEvent, build_event
from pfunc.project import FunctionConfig
from pfunc.request_fields import first_values, joined_headers
from pfunc.server.state import DevState
from pfunc.server.wire import header_text, pubnub_error, wire_json

PREFIX = "/v1/blocks/sub-key/"


def not_found(state: DevState, method: str, path: str) -> web.Response:
    """A 404: under the on-request prefix, with the paths the project's functions serve;
    elsewhere, saying it is not an endpoint of PubNub's that pfunc knows. Logged: a
    request that reached no function is worth a line."""
    state.log({"type": "unrouted", "method": method, "path": path, "status": 404})
    if not path.startswith(PREFIX):
        return pubnub_error(404, f"{path} is not a PubNub endpoint pfunc dev knows")
    prefix = f"{PREFIX}{state.engine.runtime.keyset.subscribe_key}/"
    paths = [
        prefix + (function.path or "")
        for function in state.project.functions
        if KINDS[function.event].family == REQUEST
    ]
    return wire_json(
        {
            "status": 404,
            "error": True,
            "message": f"no function serves {path}",
            "service": "pfunc",
            "on_request_paths": paths,
        },
        status=404,
    )


def _charset(content_type: str) -> str:
    """The charset a content type names, if Python knows it; else UTF-8."""
    import codecs

    for parameter in content_type.split(";")[1:]:
        name, _, value = parameter.strip().partition("=")
        if name.strip().lower() == "charset":
            try:
                return codecs.lookup(value.strip().strip('"')).name
            except LookupError:
                break
    return "utf-8"


def _body_text(raw: bytes, charset: str | None) -> str:
    """The body as text for the handler: in its declared charset when Python knows it,
    else UTF-8; bytes that do not decode become U+FFFD rather than a refusal (a handler
    may want to answer a binary upload)."""
    try:
        return raw.decode(charset or "utf-8", errors="replace")
    except (LookupError, UnicodeError):  # no text encoding (rot13, base64), or one that
        return raw.decode("utf-8", errors="replace")  # cannot replace (idna)


class Blocks:
    def __init__(self, state: DevState) -> None:
        self.state = state

    def routes(self) -> list[web.RouteDef]:
        return [web.route("*", PREFIX + "{sub}/{path:.*}", self.on_request)]

    def route(self, path: str) -> tuple[FunctionConfig, str] | None:
        """The on-request function serving `path` (after the sub-key), and the rest of it:
        of the functions whose path serves it, the one whose path says most, its letters
        but the `*`s ("api/v2" before "api" and "api/*", "api/*/items" before "api"), the
        first in pfunc.toml of equals."""
        clean = path.strip("/")
        best: tuple[FunctionConfig, str] | None = None
        most = -1
        for function in self.state.project.functions:
            if KINDS[function.event].family != REQUEST or function.path is None:
                continue
            rest = _rest_served(function.path, clean)
            said = len(function.path.replace("*", "").replace("/", ""))  # its letters
            if rest is not None and said > most:
                best, most = (function, rest), said
        return best

    async def on_request(self, request: web.Request) -> web.Response:
        if request.match_info["sub"] != self.state.engine.runtime.keyset.subscribe_key:
            return pubnub_error(400, "Invalid Subscribe Key", "blocks")
        path = request.match_info["path"]
        if ".." in path.split("/"):
            return pubnub_error(400, "Invalid path: it may not climb out with ..", "blocks")
        found = self.route(path)
        if found is None:
            return not_found(self.state, request.method, request.path)
        function, rest = found
        query = first_values(request.query.items())
        spec = EventSpec(
            method=request.method,
            path=rest,
            query=query,
            headers=joined_headers((k, header_text(v)) for k, v in request.headers.items()),
            body=_body_text(await request.read(), request.charset),
        )
        event = build_event(KINDS[function.event], spec)
        if isinstance(event, RequestEvent):
            event.uri = request.path  # with the function's own path, as production gives
            # The URL's path and query as aiohttp split them: a `?` in this path was sent
            # encoded (%3F), so it is the path's (the builder splits a written one).
            event.path, event.query = rest or "/", query
            event.clientip = request.remote
        result = await self.state.engine.functions.executor(function).run(event)
        if result.outcome != "response" or result.response is None:
            error = result.error.message if result.error else "the function did not respond"
            # 503 at a time limit (or no instance free in it), else 500: Result.http_status.
            failed = f'function "{function.name}" failed: {error}'
            return pubnub_error(result.http_status or 500, failed, "blocks")
        response = result.response
        status = int(response["status"])
        headers = CIMultiDict(  # one line a value of a list (several Set-Cookie)
            (name, text)
            for name, value in response["headers"].items()
            for text in (value if isinstance(value, list) else [value])
        )
        content_type = headers.get("content-type")
        if content_type is not None:
            # The handler's own content type, as it wrote it (aiohttp would add a charset),
            # and the text in the charset it names.
            body = response["body"].encode(_charset(content_type), "replace")
            return web.Response(status=status, body=body, headers=headers)
        return web.Response(status=status, text=response["body"], headers=headers)


def _rest_served(pattern: str, clean: str) -> str | None:
    """The request path a function at `pattern` sees for the request path `clean` (the
    part after its own prefix), or None when it does not serve it."""
    # "session" and "session/*" both serve session/login with request.path "/login".
    base = pattern[:-2] if pattern.endswith("/*") else pattern
    if clean == base:
        return "/"
    if "*" not in base and clean.startswith(base + "/"):
        return "/" + clean[len(base) + 1 :]
    # (api/*/items/* serves api/7/items too, as session/* serves session.)
    if "*" in base and (fnmatch.fnmatchcase(clean, pattern) or fnmatch.fnmatchcase(clean, base)):
        # The part after the literal prefix before the first * ("v1/tasks*" and
        # v1/tasks/123/comments: "/123/comments"), as for any other path.
        prefix = pattern[: pattern.index("*")].rstrip("/")
        return "/" + clean[len(prefix) :].lstrip("/")
    return None
