"""The kvstore module as the dev server runs it while a console page is open (or
--record runs): the same gateway, plus a note of the value each key held when the
execution first touched it, so "save as scenario" can seed a fresh store with what the
execution found. With no page open it adds one attribute test per call."""

from __future__ import annotations

import json
from collections.abc import Callable

from pfunc.modules.calls import CallContext, JSArg
from pfunc.modules.kvstore import KVStoreModule
from pfunc.result import UNSEEN_KV

ITEM_CALLS = {"get", "getItem", "set", "setItem", "removeItem"}
COUNTER_CALLS = {"getCounter", "incrCounter", "removeItem"}


class ObservedKVStore(KVStoreModule):
    def __init__(self, capturing: Callable[[], bool]) -> None:
        super().__init__()
        self.capturing = capturing

    async def call(self, method: str, args: list[JSArg], context: CallContext) -> str | None:
        if self.capturing():
            key = self.key_of(method, args)
            if key is not None:
                await self._note(method, key, context)
        else:  # what it found is not known: it cannot be saved as a scenario
            context.observed[UNSEEN_KV] = True
        return await super().call(method, args, context)

    @staticmethod
    async def _note(method: str, key: str, context: CallContext) -> None:
        seen = context.observed
        store, keyset = context.store, context.keyset
        if method in ITEM_CALLS and f"item:{key}" not in seen:
            text = await store.get_item(keyset, key, context.clock.now_ms())
            seen[f"item:{key}"] = None if text is None else json.loads(text)
        if method in COUNTER_CALLS and f"counter:{key}" not in seen:
            seen[f"counter:{key}"] = await store.get_counter(keyset, key)
