"""The console's KV store view: list items and counters by prefix (paged, with size and
TTL left), and set, delete and increment. Writes go through `pfunc kv`'s KVTool, which
goes through the kvstore module's own checks: the same key, value and TTL limits (and
wording) as a handler's calls. Every mistake is a 400 in PubNub's error shape."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from pfunc import jsonio
from pfunc.cli.kvtool import KVTool
from pfunc.errors import PfuncUsageError
from pfunc.server.console_api import Console
from pfunc.server.guards import console_only
from pfunc.server.state import DevState
from pfunc.server.wire import pubnub_error

PAGE = 50
MAX_PAGE = 500
MAX_STEP = 2**53 - 1  # what a handler's number can carry exactly


class ConsoleKV:
    def __init__(self, state: DevState, console: Console) -> None:
        self.state = state
        self.console = console

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/pfunc/console/kv", console_only(self.list)),
            web.post("/pfunc/console/kv", console_only(self.change)),
        ]

    def _tool(self) -> KVTool:
        return KVTool(self.state.engine.runtime)

    async def list(self, request: web.Request) -> web.Response:
        """GET ?space=items|counters&prefix=&after=KEY&limit=N: one page, sorted by key."""
        query = request.query
        space = query.get("space", "items")
        if space not in ("items", "counters"):
            return pubnub_error(400, "space must be items or counters")
        try:
            limit = int(query.get("limit", PAGE))
        except ValueError:
            return pubnub_error(400, "limit must be a whole number")
        if not 1 <= limit <= MAX_PAGE:
            return pubnub_error(400, f"limit must be 1 to {MAX_PAGE}")
        prefix, after = query.get("prefix", ""), query.get("after") or None
        runtime = self.state.engine.runtime
        keyset, now = runtime.keyset.subscribe_key, runtime.clock.now_ms()
        rows: list[dict[str, Any]] = []
        # One more than a page: whether there is a next one. A range on the key index.
        if space == "items":
            found = await runtime.store.items(keyset, prefix, now, after=after, limit=limit + 1)
            for key, text, expires in found:
                row = {
                    "key": key,
                    "size": len(text.encode("utf-8")),
                    "ttl_seconds": max(0, (expires - now) // 1000),
                }
                try:
                    row["value"] = jsonio.loads(text, lone_surrogates=True)
                except ValueError as error:  # stored by an older pfunc: said, not a 500
                    row["value"] = f"(cannot be read back: {error}) {text[:80]}"
                    row["text"] = json.dumps(row["value"])
                else:
                    row["text"] = _shown(row["value"])
                rows.append(row)
        else:
            found_counters = await runtime.store.counters(
                keyset, prefix, after=after, limit=limit + 1
            )
            rows = [{"key": key, "value": n, "text": str(n)} for key, n in found_counters]
        page = rows[:limit]
        answer: dict[str, Any] = {"space": space, "rows": page}
        if len(rows) > limit:
            answer["next"] = page[-1]["key"]
        return web.json_response(answer)

    async def change(self, request: web.Request) -> web.Response:
        """POST {"op": "set", "key", "value": JSON text, "ttl": minutes?} |
        {"op": "delete", "key"} | {"op": "incr", "key", "amount"?}."""
        try:
            body = jsonio.loads(await request.read())
        except (ValueError, UnicodeDecodeError) as error:
            return pubnub_error(400, f"the body must be JSON: {error}")
        if not isinstance(body, dict):
            return pubnub_error(400, "the body must be a JSON object")
        op, key = body.get("op"), body.get("key")
        tool = self._tool()
        answer: dict[str, Any] = {"op": op, "key": key}
        try:
            if not isinstance(key, str):
                raise PfuncUsageError("key must be text")
            if op == "set":
                value, ttl = body.get("value"), body.get("ttl")
                if not isinstance(value, str):
                    raise PfuncUsageError("value must be the value's JSON text")
                try:
                    jsonio.loads(value)
                except ValueError as error:
                    raise PfuncUsageError(f"the value is not JSON: {error}") from None
                if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, int | float)):
                    raise PfuncUsageError("ttl must be a number of minutes")
                await tool.set(key, value, ttl)
            elif op == "delete":
                await tool.remove(key)
            elif op == "incr":
                amount = body.get("amount", 1)
                if (
                    isinstance(amount, bool)
                    or not isinstance(amount, int)
                    or abs(amount) > MAX_STEP
                ):
                    raise PfuncUsageError(f"amount must be a whole number up to {MAX_STEP:,}")
                answer["value"] = await tool.incr(key, amount)
            else:
                raise PfuncUsageError("op must be set, delete or incr")
        except PfuncUsageError as error:
            return pubnub_error(400, str(error))
        answer["warnings"] = tool.warnings
        self.console.hub.note("kv", json.dumps({"keys": [key]}))
        return web.json_response(answer)


def _shown(value: Any) -> str:
    """A stored value as the page shows it and starts an edit from: written here, where
    numbers are exact, since the browser's JSON.parse rounds integers past 2^53, and a
    TTL-only edit would save the rounded value."""
    return jsonio.shown(value, indent=2)
