"""`pfunc kv`: read and change the project's KV store from the command line.

Writes go through the kvstore module's gateway, so keys, values and TTLs are checked
and worded exactly as they are for handlers. Safe while `pfunc dev` runs: SQLite in
WAL mode, one statement per change.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pfunc.errors import PfuncUsageError
from pfunc.modules.calls import CallContext, HandlerCallError, JSArg
from pfunc.modules.kvstore import KVStoreModule
from pfunc.runtime import Runtime

EXPORT_FORMAT = "pfunc-kv-1"


class KVTool:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.keyset = runtime.keyset.subscribe_key
        self.warnings: list[str] = []
        self._gateway = KVStoreModule()

    def _context(self) -> CallContext:
        runtime = self.runtime
        return CallContext(
            runtime.store,
            self.keyset,
            runtime.profile,
            runtime.clock,
            self.warnings.append,
        )

    async def _call(self, method: str, *args: JSArg) -> Any:
        try:
            text = await self._gateway.call(method, list(args), self._context())
        except HandlerCallError as error:
            raise PfuncUsageError(error.message) from None
        return None if text is None else json.loads(text)

    async def list_items(self, prefix: str) -> list[dict[str, Any]]:
        now = self.runtime.clock.now_ms()
        return [
            {"key": key, "value": json.loads(value), "expires_at": _iso(expires)}
            for key, value, expires in await self.runtime.store.items(self.keyset, prefix, now)
        ]

    async def list_counters(self, prefix: str) -> list[dict[str, Any]]:
        return [
            {"key": key, "value": value}
            for key, value in await self.runtime.store.counters(self.keyset, prefix)
        ]

    async def get(self, key: str) -> Any:
        return await self._call("get", _text(key))

    async def set(self, key: str, value_json: str, ttl: float | None) -> None:
        try:
            json.loads(value_json)
        except ValueError as error:
            raise PfuncUsageError(
                f"VALUE is not JSON ({error}); quote strings: pfunc kv set greeting '\"hi\"'"
            ) from None
        ttl_arg = JSArg({"t": "undefined"}) if ttl is None else JSArg({"v": ttl})
        await self._call("set", _text(key), JSArg({"j": value_json}), ttl_arg)

    async def remove(self, key: str) -> None:
        await self._call("removeItem", _text(key))

    async def incr(self, key: str, amount: int) -> int:
        return int(await self._call("incrCounter", _text(key), JSArg({"v": amount})))

    async def export(self, path: Path) -> dict[str, int]:
        items = await self.list_items("")
        counters = await self.list_counters("")
        data = {
            "format": EXPORT_FORMAT,
            "keyset": self.keyset,
            "exported_at": _iso(self.runtime.clock.now_ms()),
            "items": items,
            "counters": {c["key"]: c["value"] for c in counters},
        }
        path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        return {"items": len(items), "counters": len(counters)}

    async def import_(self, path: Path) -> dict[str, int]:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise PfuncUsageError(f"{path}: cannot read a pfunc kv export: {error}") from None
        if not isinstance(data, dict) or data.get("format") != EXPORT_FORMAT:
            raise PfuncUsageError(f"{path}: not a file written by pfunc kv export")
        store, imported = self.runtime.store, {"items": 0, "counters": 0}
        for item in data.get("items", []):
            expires = int(datetime.fromisoformat(item["expires_at"]).timestamp() * 1000)
            await store.set_item(self.keyset, item["key"], json.dumps(item["value"]), expires)
            imported["items"] += 1
        for key, value in data.get("counters", {}).items():
            await store.set_counter(self.keyset, key, int(value))
            imported["counters"] += 1
        return imported

    async def clear(self) -> None:
        await self.runtime.store.clear(self.keyset)


def _text(value: str) -> JSArg:
    return JSArg({"v": value})


def _iso(ms: int) -> str:
    return (
        datetime.fromtimestamp(ms / 1000, tz=UTC)
        .isoformat(timespec="seconds")
        .replace("+00:00", "Z")
    )
