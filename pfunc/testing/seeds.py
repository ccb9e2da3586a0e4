"""A scenario's `kv` and `counters`: stored before its first step as a handler's own
calls would store them, and checked by the same limits, so that a scenario cannot pass
on data production could never hold."""

from __future__ import annotations

from typing import Any

from pfunc.errors import PfuncUsageError
from pfunc.modules.calls import CallContext, HandlerCallError, JSArg
from pfunc.modules.kvstore import KVStoreModule, checked_record
from pfunc.runtime import Runtime

SEED_TTL_MS = 1440 * 60_000  # kvstore.set's default: a day


class SeedRefused(PfuncUsageError):
    """A seed production could not hold: which table, which key, and the call's words."""

    def __init__(self, table: str, key: str, message: str) -> None:
        super().__init__(f"{table} {key!r}: {message}")
        self.table, self.key = table, key


async def seed_store(runtime: Runtime, items: dict[str, Any], counters: dict[str, int]) -> None:
    """Store `items` (a string as setItem stores it, anything else as set) and `counters`;
    SeedRefused, with nothing stored, when one is refused."""
    store, keyset = runtime.store, runtime.keyset.subscribe_key
    context = CallContext(store, keyset, runtime.profile, runtime.clock, lambda _: None)
    records, numbers = [], []
    for table, key, value in [
        *(("kv", key, value) for key, value in items.items()),
        *(("counters", key, value) for key, value in counters.items()),
    ]:
        try:
            if table == "kv":
                records.append(checked_record(key, value, context))
            else:
                checked = KVStoreModule.checked_key("incrCounter", JSArg({"v": key}), context)
                numbers.append((checked, value))
        except HandlerCallError as error:
            raise SeedRefused(table, key, error.message) from None
    expires = runtime.clock.now_ms() + SEED_TTL_MS
    for key, text in records:
        await store.set_item(keyset, key, text, expires)
    for key, value in numbers:
        await store.set_counter(keyset, key, value)
