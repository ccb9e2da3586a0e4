"""Synchronous built-ins (jwt, uuid, codecs, jsonpath, utils, advanced_math) for Python
handlers: answered by the same JavaScript implementations JavaScript handlers use, in a
QuickJS context of the host's, so both languages get identical results."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

import quickjs

from pfunc.modules.calls import CallContext, HandlerCallError, JSArg

_CALL = """
(function (name, method, argsJson, nowMs) {
  Date.now = function () { return nowMs; };
  const target = __pfunc_builtins[name];
  if (!target || typeof target[method] !== "function")
    throw new TypeError(name + "." + method + " is not a function");
  const value = target[method].apply(target, JSON.parse(argsJson));
  return JSON.stringify(value === undefined ? null : value);
})
"""


@cache
def _context() -> tuple[quickjs.Context, quickjs.Object]:
    context = quickjs.Context()
    source = resources.files("pfunc.sandbox").joinpath("builtins.js").read_text(encoding="utf-8")
    context.eval(source)
    return context, context.eval(_CALL)


class BuiltinModule:
    inline = True

    def key_of(self, method: str, args: list[JSArg]) -> str | None:
        return None

    async def call(self, method: str, args: list[JSArg], context: CallContext) -> str | None:
        name, _, function = method.rpartition(".")
        values = [None if arg.invalid else arg.value for arg in args]
        _, call = _context()
        try:
            return str(call(name, function, json.dumps(values), float(context.clock.now_ms())))
        except quickjs.JSException as error:
            kind, _, message = str(error).partition("\n")[0].partition(": ")
            raise HandlerCallError(kind if message else "Error", message or kind) from None
