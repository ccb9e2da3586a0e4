"""The kvstore module's gateway: validates each call, words its errors, and talks to the store.

Error messages follow the contract: which call, which argument, what was wrong, the
limit and the profile, then what to do.
"""

from __future__ import annotations

import json
import math
from typing import Any

from pfunc import jsonio
from pfunc.modules import MODULES
from pfunc.modules.calls import AnsweredAtOnce, CallContext, HandlerCallError, JSArg
from pfunc.store import CounterOverflow

_PAGE_TOKEN_PREFIX = "pk1."


def _fmt(number: float) -> str:
    return f"{number:,}" if isinstance(number, int) else f"{number:g}"


class KVStoreModule(AnsweredAtOnce):
    def key_of(self, method: str, args: list[JSArg]) -> str | None:
        if method in ("getKeys", "getCounterKeys") or not args:
            return None
        first = args[0]
        return first.value if isinstance(first.value, str) else None

    def __init__(self) -> None:
        # The methods the registry declares, each answered by the _method of that name.
        self._methods = {name: getattr(self, f"_{name}") for name in MODULES["kvstore"].methods}

    async def call(self, method: str, args: list[JSArg], context: CallContext) -> str | None:
        handler = self._methods.get(method)
        if handler is None:  # the sandbox only offers the registry's methods
            raise HandlerCallError("TypeError", f"kvstore.{method} is not a function")
        if len(args) < 3:  # missing arguments read as undefined
            args = [*args, *_PADDING[: 3 - len(args)]]
        return await handler(args, context)

    # --- argument checks -------------------------------------------------------

    @staticmethod
    def checked_key(call: str, arg: JSArg, context: CallContext) -> str:
        if arg.invalid is not None or not isinstance(arg.value, str):
            raise HandlerCallError(
                "TypeError",
                f"kvstore.{call}: key must be a string, got {arg.type_name()} {arg.describe()}"
                if arg.invalid is None
                else f"kvstore.{call}: key must be a string, got {arg.type_name()}",
            )
        key: str = arg.value
        if not key:
            raise HandlerCallError("Error", f"kvstore.{call}: key is empty; pass a non-empty key")
        try:
            key.encode("utf-8")
        except UnicodeEncodeError:
            raise HandlerCallError(
                "TypeError",
                f"kvstore.{call}: key holds a lone surrogate, which is not valid Unicode; "
                "use text that UTF-8 can carry",
            ) from None
        limit = context.profile.key_length
        if limit is not None and (length := jsonio.js_length(key)) > limit:
            raise HandlerCallError(
                "Error",
                f"kvstore.{call}: key is {length:,} characters; the limit is {limit:,} "
                f"({context.profile.describe()}). Use a shorter key, e.g. hash its long part.",
            )
        return key

    @staticmethod
    def checked_value(call: str, key: str, arg: JSArg, context: CallContext) -> str:
        if arg.invalid is not None:
            if arg.is_undefined:
                hint = "pass null to delete the key, or a JSON value to store"
            else:
                hint = "store plain JSON data (objects, arrays, strings, numbers, booleans)"
            raise HandlerCallError(
                "TypeError",
                f'kvstore.{call}: value for key "{key}" is {arg.type_name()}, which is not '
                f"JSON-serialisable; {hint}",
            )
        text = arg.json or "null"
        limit = context.profile.value_size
        if limit is not None:
            # setItem's value is the string itself (PubNub: "up to 32,000 characters"), not
            # its JSON, whose quotes and escapes would count twice for JSON.stringify'd text.
            measured, what = (arg.value, "") if call == "setItem" else (text, " of JSON")
            if context.profile.value_size_unit == "bytes":
                size, unit = len(measured.encode("utf-8", "surrogatepass")), "bytes"
            else:
                size, unit = jsonio.js_length(measured), "characters"
            if size > limit:
                raise HandlerCallError(
                    "Error",
                    f'kvstore.{call}: value for key "{key}" is {size:,} {unit}{what}; the '
                    f"limit is {limit:,} ({context.profile.describe()}). Store less under one "
                    "key, or split the value across several keys.",
                )
        return text

    @staticmethod
    def _expiry(call: str, key: str, arg: JSArg, context: CallContext) -> int:
        profile = context.profile
        if arg.is_undefined or arg.is_null:
            minutes: float = profile.ttl_default
        elif arg.invalid in ("Infinity", "-Infinity"):  # a number, out of range: clamped
            minutes = float(arg.invalid.replace("Infinity", "inf"))
            clamped = profile.clamped_ttl(minutes)
            context.warn(
                f'kvstore.{call}: ttl {arg.invalid} for key "{key}" is outside '
                f"{profile.ttl_min:,}..{profile.ttl_max:,} minutes; clamped to {_fmt(clamped)}"
            )
            minutes = clamped
        elif (
            arg.invalid is not None
            or isinstance(arg.value, bool)
            or not isinstance(arg.value, int | float)
            or math.isnan(arg.value)
        ):
            raise HandlerCallError(
                "TypeError",
                f'kvstore.{call}: ttl for key "{key}" must be a number of minutes, got '
                f"{arg.type_name()} {arg.describe()}",
            )
        else:
            minutes = arg.value
            if not math.isfinite(minutes) or minutes < profile.ttl_min or minutes > profile.ttl_max:
                clamped = profile.clamped_ttl(minutes)
                context.warn(
                    f'kvstore.{call}: ttl {_fmt(minutes)} for key "{key}" is outside '
                    f"{profile.ttl_min:,}..{profile.ttl_max:,} minutes; clamped to "
                    f"{_fmt(clamped)}"
                )
                minutes = clamped
        return context.clock.now_ms() + int(minutes * 60_000)

    # --- items -----------------------------------------------------------------

    async def _set(self, args: list[JSArg], context: CallContext) -> None:
        key = self.checked_key("set", args[0], context)
        value = args[1]
        # set(key, null) deletes; so does a value whose JSON is null (new Date(NaN), a
        # toJSON that gives null): stored, the text "null" would read as no item.
        if value.is_null or value.json == "null":
            await context.store.delete_item(context.keyset, key)
            return None
        await self._store("set", key, value, args[2], context)
        return None

    async def _setItem(self, args: list[JSArg], context: CallContext) -> None:
        key = self.checked_key("setItem", args[0], context)
        value = args[1]
        if value.invalid is not None or not isinstance(value.value, str):
            raise HandlerCallError(
                "TypeError",
                f'kvstore.setItem: value for key "{key}" must be a string, got '
                f"{value.type_name()}; use kvstore.set for other JSON values, or "
                "JSON.stringify the value first",
            )
        await self._store("setItem", key, value, args[2], context)
        return None

    async def _store(
        self, call: str, key: str, value: JSArg, ttl: JSArg, context: CallContext
    ) -> None:
        """Validate the value and TTL, then write; nothing is written if either is invalid."""
        text = self.checked_value(call, key, value, context)
        expires_at = self._expiry(call, key, ttl, context)
        await context.store.set_item(context.keyset, key, text, expires_at)

    async def _get(self, args: list[JSArg], context: CallContext) -> str:
        key = self.checked_key("get", args[0], context)
        text = await context.store.get_item(context.keyset, key, context.clock.now_ms())
        return "null" if text is None else text

    async def _getItem(self, args: list[JSArg], context: CallContext) -> str:
        key = self.checked_key("getItem", args[0], context)
        text = await context.store.get_item(context.keyset, key, context.clock.now_ms())
        if text is None:
            return "null"
        # A string item comes back as itself; anything else as its JSON text.
        return text if text.startswith('"') else json.dumps(text)

    async def _removeItem(self, args: list[JSArg], context: CallContext) -> None:
        key = self.checked_key("removeItem", args[0], context)
        await context.store.remove(context.keyset, key)
        return None

    # --- counters --------------------------------------------------------------

    async def _getCounter(self, args: list[JSArg], context: CallContext) -> str:
        key = self.checked_key("getCounter", args[0], context)
        return str(await context.store.get_counter(context.keyset, key))

    async def _incrCounter(self, args: list[JSArg], context: CallContext) -> str:
        key = self.checked_key("incrCounter", args[0], context)
        step = args[1]
        if step.is_undefined:
            amount = 1
        elif (
            step.invalid is not None
            or isinstance(step.value, bool)
            or not isinstance(step.value, int | float)
            or step.value != int(step.value)
        ):
            raise HandlerCallError(
                "TypeError",
                f'kvstore.incrCounter: amount for key "{key}" must be a whole number, got '
                f"{step.type_name()} {step.describe()}",
            )
        else:
            amount = int(step.value)
        try:
            return str(await context.store.incr_counter(context.keyset, key, amount))
        except CounterOverflow:
            raise HandlerCallError(
                "RangeError",
                f'kvstore.incrCounter: counter "{key}" plus {amount} would pass what a '
                "64-bit integer holds (-2^63 to 2^63-1); it is unchanged",
            ) from None

    # --- listing ---------------------------------------------------------------

    async def _getKeys(self, args: list[JSArg], context: CallContext) -> str:
        after = self._page_token("getKeys", "items", args[0])
        page = context.profile.keys_per_page
        keys = await context.store.item_keys(
            context.keyset, after, page + 1, context.clock.now_ms()
        )
        return self._page("items", keys, page)

    async def _getCounterKeys(self, args: list[JSArg], context: CallContext) -> str:
        after = self._page_token("getCounterKeys", "counters", args[0])
        page = context.profile.keys_per_page
        keys = await context.store.counter_keys(context.keyset, after, page + 1)
        return self._page("counters", keys, page)

    @staticmethod
    def _page(space: str, keys: list[str], page: int) -> str:
        result: dict[str, object] = {"keys": keys[:page]}
        if len(keys) > page:
            import base64  # page tokens only: off the cold start of every `pfunc run`

            marker = json.dumps([space, keys[page - 1]]).encode()
            result["next"] = _PAGE_TOKEN_PREFIX + base64.urlsafe_b64encode(marker).decode()
        return json.dumps(result)

    @staticmethod
    def _page_token(call: str, space: str, arg: JSArg) -> str | None:
        if arg.is_undefined or arg.is_null:
            return None
        token = arg.value
        import base64

        try:
            if not isinstance(token, str) or not token.startswith(_PAGE_TOKEN_PREFIX):
                raise ValueError
            marker = json.loads(base64.urlsafe_b64decode(token[len(_PAGE_TOKEN_PREFIX) :]))
            if not (isinstance(marker, list) and len(marker) == 2 and marker[0] == space):
                raise ValueError
            if not isinstance(marker[1], str):
                raise ValueError
            return marker[1]
        except ValueError:
            raise HandlerCallError(
                "Error",
                f"kvstore.{call}: pagination token {arg.describe()} is not one this call "
                'issued; pass the "next" value of the previous page, or no token for the '
                "first page",
            ) from None


_MISSING = JSArg({"t": "undefined"})
_PADDING = (_MISSING, _MISSING, _MISSING)


def stored_as(value: Any) -> tuple[str, JSArg]:
    """The kvstore method, and its value argument, that store `value` as a handler would:
    a string as setItem (its limit counts the string, not its JSON: a string stored so,
    full of quotes, is refused by set's count), anything else as set, its JSON as
    JavaScript writes it (1e-7, not Python's 1e-07)."""
    if isinstance(value, str):
        return "setItem", JSArg({"v": value})
    return "set", JSArg({"j": jsonio.dumps(value)})


def checked_record(key: str, value: Any, context: CallContext) -> tuple[str, str]:
    """`key` and the text stored for `value`, checked as a handler's own call storing them
    would be (kv import's records, a scenario's kv seeds); HandlerCallError as that call's."""
    method, value_arg = stored_as(value)
    checked_key = KVStoreModule.checked_key(method, JSArg({"v": key}), context)
    return checked_key, KVStoreModule.checked_value(method, checked_key, value_arg, context)
