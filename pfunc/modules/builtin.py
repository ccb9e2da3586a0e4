"""Synchronous built-ins for Python handlers: answered by the handler's own sandbox
(`sandbox/sync_builtins.py`), the same JavaScript implementations JavaScript handlers
use, under that handler's time and memory limits."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

from pfunc.modules.calls import AnsweredAtOnce, CallContext, HandlerCallError, JSArg

if TYPE_CHECKING:
    from pfunc.sandbox.sync_builtins import SyncBuiltins


class BuiltinModule(AnsweredAtOnce):
    def key_of(self, method: str, args: list[JSArg]) -> str | None:
        return None

    async def call(self, method: str, args: list[JSArg], context: CallContext) -> str | None:
        if method == "pubnub.getFileUrl":  # needs the server's files, not the sandbox
            from pfunc.modules.pubnub_files import file_url

            options = args[0].value if args and isinstance(args[0].value, dict) else {}
            if context.pubnub_data is None:
                raise HandlerCallError("Error", "files are not available here")
            return json.dumps(file_url(context.pubnub_data, options))
        if context.sync_builtins is None:
            raise HandlerCallError("TypeError", "the synchronous built-ins are for Python handlers")
        seconds = None if context.deadline is None else context.deadline - time.monotonic()
        return answer(context.sync_builtins, method, args, context.clock.now_ms(), seconds)


def answer(
    builtins: SyncBuiltins, method: str, args: list[JSArg], now_ms: int, seconds: float | None
) -> str:
    """The JSON text of `method` ("uuid.v4") called in a Python handler's own context of
    the synchronous built-ins; HandlerCallError as the call's rejection."""
    from pfunc.sandbox.sync_builtins import SyncBuiltinError

    name, _, function = method.rpartition(".")
    values = [None if arg.invalid else arg.value for arg in args]
    try:
        return builtins.call(name, function, json.dumps(values), now_ms, seconds)
    except SyncBuiltinError as error:
        raise HandlerCallError(error.kind, error.message) from None
