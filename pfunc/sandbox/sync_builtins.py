"""The synchronous built-ins (jwt, uuid, codecs, jsonpath, utils, advanced_math) for a
Python handler: the same JavaScript implementations JavaScript handlers use, in a
QuickJS context that belongs to that handler's sandbox and runs under its limits.

One context per sandbox: a context is not safe to share between threads, and nothing a
handler does to it (a JSONPath filter that never ends, a replaced uuid.v4) may reach
another handler or outlive the handler's own limits.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import quickjs

from pfunc.sandbox.time_limit import TimeLimit

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


# Seeded randomness for test runs, the generator JavaScript handlers' Math.random uses
# (mulberry32 in prelude.js), so uuid.v4 and utils.randomInt repeat from run to run.
_SEED = """
(function () {
  const engineRandom = Math.random;
  return function (seed) {
    if (seed === null) { Math.random = engineRandom; return; }
    let state = seed >>> 0;
    Math.random = function random() {
      state = (state + 0x6d2b79f5) >>> 0;
      let t = state;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  };
})()
"""


@cache
def _source() -> str:
    return (Path(__file__).with_name("builtins.js")).read_text(encoding="utf-8")


class SyncBuiltinError(Exception):
    """A call failed: `kind` is the JavaScript error's name (TypeError...)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


class SyncBuiltins:
    def __init__(self, memory: int | None) -> None:
        self._context = quickjs.Context()
        self._limit = TimeLimit(self._context)  # the execution's: wall time, as its own
        if memory is not None:
            self._context.set_memory_limit(memory)
        self._context.eval(_source())
        self._call = self._context.eval(_CALL)
        self._seed = self._context.eval(_SEED)

    def seed(self, random_seed: int | None) -> None:
        """Draw uuid.v4 and utils.randomInt from `random_seed` (a test run), or from the
        engine (None)."""
        self._seed(None if random_seed is None else float(random_seed % 2**32))

    def call(
        self, name: str, method: str, args_json: str, now_ms: int, seconds: float | None
    ) -> str:
        """JSON text of `name.method(*args)`; SyncBuiltinError when it throws, runs past
        `seconds` or out of memory."""
        self._limit.arm(seconds)
        try:
            return str(self._call(name, method, args_json, float(now_ms)))
        except quickjs.JSException as error:
            first = str(error).partition("\n")[0]
            if "interrupted" in first:
                raise SyncBuiltinError(
                    "Error", f"{name}.{method} ran past the time limit"
                ) from None
            kind, _, message = first.partition(": ")
            raise SyncBuiltinError(kind if message else "Error", message or kind) from None
        except MemoryError:
            raise SyncBuiltinError("Error", f"{name}.{method} ran out of memory") from None
        finally:
            self._limit.arm(None)
