"""The KV tool behind `pfunc kv` and the console's KV view: list, read and change the
project's store.

Writes go through the kvstore module's gateway, so keys, values and TTLs are checked
and worded exactly as they are for handlers. Safe while `pfunc dev` runs: SQLite in
WAL mode, one statement per change.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pfunc import jsonio
from pfunc.errors import PfuncUsageError
from pfunc.events import is_unicode
from pfunc.modules.calls import CallContext, HandlerCallError, JSArg
from pfunc.modules.kvstore import KVStoreModule, checked_record, stored_as
from pfunc.numbers import fits_counter
from pfunc.runtime import Runtime
from pfunc.terminal import shell_word

EXPORT_FORMAT = "pfunc-kv-1"


class StoreWriteError(Exception):
    """A write the store or the disk refused (full, read-only); one line, exit 1."""


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

    async def _call(self, method: str, *args: JSArg, decoded: bool = True) -> Any:
        try:
            text = await self._gateway.call(method, list(args), self._context())
        except HandlerCallError as error:
            raise PfuncUsageError(error.message) from None
        if text is None or not decoded:
            return text
        return _read_back(str(args[0].value), text)

    async def list_items(
        self, prefix: str, after: str | None = None, limit: int = -1, exact: bool = False
    ) -> list[dict[str, Any]]:
        """Live items by key (`exact`: expiries to the millisecond, as an export keeps
        them; a listing shows seconds)."""
        _check_text(prefix, after)
        now = self.runtime.clock.now_ms()
        found = await self.runtime.store.items(self.keyset, prefix, now, after=after, limit=limit)
        return [
            {"key": key, "value": _read_back(key, value), "expires_at": _iso(expires, exact)}
            for key, value, expires in found
        ]

    async def list_counters(
        self, prefix: str, after: str | None = None, limit: int = -1
    ) -> list[dict[str, Any]]:
        _check_text(prefix, after)
        found = await self.runtime.store.counters(self.keyset, prefix, after=after, limit=limit)
        return [{"key": key, "value": value} for key, value in found]

    async def get(self, key: str) -> Any:
        return await self._call("get", _text(key))

    async def set(self, key: str, value_json: str, ttl: float | None) -> None:
        if not is_unicode(value_json):
            raise PfuncUsageError("VALUE is not UTF-8 text; write it as UTF-8")
        try:
            value = jsonio.loads(value_json)
        except ValueError as error:
            raise PfuncUsageError(
                f"VALUE is not JSON ({error}); quote strings: pfunc kv set greeting '\"hi\"'"
            ) from None
        if value is None:  # kvstore.get answers null for it as for no item at all
            raise PfuncUsageError(
                f"null stores nothing a handler can tell from no item; delete {key!r} instead "
                f"(pfunc kv rm {shell_word(key)})"
            )
        ttl_arg = JSArg({"t": "undefined"}) if ttl is None else JSArg({"v": ttl})
        method, value_arg = stored_as(value)
        await self._call(method, _text(key), value_arg, ttl_arg)

    async def remove(self, key: str) -> bool:
        """Remove the item and the counter under `key`; whether either was there (a live
        item, or a counter: an expired item is already gone for every reader)."""
        # Counters under `key` as a prefix, in key order: the key itself comes first.
        try:
            first_counter = await self.list_counters(key, limit=1)
            counter = bool(first_counter) and first_counter[0]["key"] == key
            # (read as text: a value that cannot be read back can still be removed)
            there = counter or await self._call("get", _text(key), decoded=False) not in (
                None,
                "null",
            )
        except PfuncUsageError:  # a key removeItem refuses too: in its own words
            await self._call("removeItem", _text(key))
            raise
        await self._call("removeItem", _text(key))
        return there

    async def incr(self, key: str, amount: int) -> int:
        return int(await self._call("incrCounter", _text(key), JSArg({"v": amount})))

    async def export_text(self) -> tuple[str, dict[str, int]]:
        """Every live item and counter of the keyset as an export file's text, and how
        many of each."""
        items = await self.list_items("", exact=True)
        counters = await self.list_counters("")
        data = {
            "format": EXPORT_FORMAT,
            "keyset": self.keyset,
            "exported_at": _iso(self.runtime.clock.now_ms()),
            "items": items,
            "counters": {c["key"]: c["value"] for c in counters},
        }
        text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
        return text, {"items": len(items), "counters": len(counters)}

    async def export(self, given: Path) -> dict[str, int]:
        # A link is written through (its target renamed over), never replaced by a file;
        # what is there and is no regular file (/dev/null, a FIFO) is refused: the rename
        # would put a file in its place. Messages name the path as given.
        path = given.resolve()
        if path.exists() and not path.is_file():
            from pfunc.cli.session import not_a_file

            raise PfuncUsageError(
                f"cannot write {given}: it {not_a_file(path)} (to write the export to "
                "standard output, give - as FILE)"
            )
        text, counts = await self.export_text()
        # Written beside the target and renamed over it: a full disk or a crash leaves the
        # old file (or none), never a half-written one.
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            temporary.write_text(text, encoding="utf-8")
            os.replace(temporary, path)
        except OSError as error:
            with contextlib.suppress(OSError):
                temporary.unlink(missing_ok=True)
            message = f"cannot write {given}: {error.strerror or error}"
            if error.errno == errno.ENOSPC:
                raise StoreWriteError(message) from None  # the disk, not the user: exit 1
            if str(given).startswith("/dev/"):  # /dev/stdout into a pipe: no file to rename over
                raise PfuncUsageError(f"{message}; to write to standard output, give -") from None
            raise PfuncUsageError(f"{message}; choose a writable path") from None
        return counts

    async def import_(self, given: Path | None) -> dict[str, int]:
        """Every record checked as `kv set` checks it, then all written in one
        transaction: a bad record anywhere imports nothing. None: standard input."""
        path = Path("-") if given is None else given  # (as messages name it)
        try:
            raw = sys.stdin.buffer.read() if given is None else given.read_bytes()
            data = jsonio.loads(raw)
        except (OSError, ValueError) as error:
            raise PfuncUsageError(f"{path}: cannot read a pfunc kv export: {error}") from None
        if not isinstance(data, dict) or data.get("format") != EXPORT_FORMAT:
            raise PfuncUsageError(f"{path}: not a file written by pfunc kv export")
        raw_items, raw_counters = data.get("items", []), data.get("counters", {})
        if not isinstance(raw_items, list) or not isinstance(raw_counters, dict):
            raise PfuncUsageError(f"{path}: items must be a list and counters an object")
        items, first_of = [], {}
        for number, item in enumerate(raw_items):
            if isinstance(item, dict) and "key" in item and item.get("value", 0) is None:
                # An older pfunc, or a handler's set(k, new Date(NaN)), stored the text
                # "null": it reads as no item, so it is left out, said, not refused.
                self.warnings.append(
                    f"{path}: items[{number}] ({item['key']!r}) holds null, which reads as no "
                    "item: not imported"
                )
                continue
            record = self._checked_item(path, number, item)
            if (first := first_of.setdefault(record[0], number)) != number:  # which would win?
                raise PfuncUsageError(f"{path}: items[{number}] has the key of items[{first}]")
            items.append(record)
        counters = [self._checked_counter(path, key, value) for key, value in raw_counters.items()]
        await self.runtime.store.import_all(self.keyset, items, counters)
        return {"items": len(items), "counters": len(counters)}

    def _checked_item(self, path: Path, number: int, item: Any) -> tuple[str, str, int]:
        where = f"{path}: items[{number}]"
        if not isinstance(item, dict) or not {"key", "value", "expires_at"} <= set(item):
            raise PfuncUsageError(f"{where} needs key, value and expires_at")
        context = self._context()
        try:
            key, value = checked_record(item["key"], item["value"], context)
            expires_at = datetime.fromisoformat(str(item["expires_at"]))
            if expires_at.tzinfo is None:  # UTC, as export writes it and --now reads it
                expires_at = expires_at.replace(tzinfo=UTC)
            expires = round(expires_at.timestamp() * 1000)
        except HandlerCallError as error:
            raise PfuncUsageError(f"{where}: {error.message}") from None
        except (ValueError, OverflowError) as error:
            raise PfuncUsageError(f"{where}: {error}") from None
        return key, value, expires

    def _checked_counter(self, path: Path, key: str, value: Any) -> tuple[str, int]:
        try:
            checked = self._gateway.checked_key("incrCounter", _text(key), self._context())
        except HandlerCallError as error:
            raise PfuncUsageError(f"{path}: counters: {error.message}") from None
        if not isinstance(value, int) or isinstance(value, bool):
            raise PfuncUsageError(
                f"{path}: counter {key!r} must be a whole number, got {jsonio.shown(value)}"
            )
        if not fits_counter(value):
            raise PfuncUsageError(
                f"{path}: counter {key!r} is {value}, outside the 64-bit integers counters are"
            )
        return checked, value

    async def clear(self) -> None:
        await self.runtime.store.clear(self.keyset)


def _text(value: str) -> JSArg:
    return JSArg({"v": value})


def _check_text(*values: str | None) -> None:
    """--prefix and --after as text SQLite can hold: bytes that are not UTF-8 in a
    command-line argument arrive as lone surrogates."""
    for value in values:
        if value is not None and not is_unicode(value):
            raise PfuncUsageError(f"{value!r} is not valid UTF-8 text; keys are Unicode text")


_LATEST_MS = int(datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp() * 1000)


def _iso(ms: int, exact: bool = False) -> str:
    # An expiry past year 9999 (set under a --now close to it) has no ISO-8601 date:
    # shown, and exported, as the last second that has one. `exact`: to the millisecond
    # (an export's: an item set at .900 would otherwise come back 900 ms shorter lived).
    return (
        datetime.fromtimestamp(min(ms, _LATEST_MS) / 1000, tz=UTC)
        .isoformat(timespec="milliseconds" if exact else "seconds")
        .replace("+00:00", "Z")
    )


def _read_back(key: str, text: str) -> Any:
    """A stored value, decoded; one line naming the key when it cannot be (nested deeper
    than a parser reads: an older pfunc let a handler store that), not a traceback."""
    try:
        return jsonio.loads(text, lone_surrogates=True)
    except ValueError as error:
        raise PfuncUsageError(
            f"the value of {key!r} cannot be read back ({error}); remove it with: "
            f"pfunc kv rm {shell_word(key)}"
        ) from None
