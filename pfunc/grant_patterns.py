"""The patterns of Access Manager grants (`^chat-.*$`), searched in resource names with a
time limit.

A pattern is a regular expression from whoever holds the secret key; a backtracking one
(`(a+)+$` against `aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!`) took Python's `re` minutes, during
which the dev server's loop, which checks every request's token, answered nothing.
QuickJS's regular-expression engine asks the interrupt handler as it backtracks, so the
patterns are JavaScript's, searched in a context of their own under a short limit: a
search that runs past it is no match (the request is refused, and the dev log says why).
"""

from __future__ import annotations

import threading
from typing import Any

SEARCH_SECONDS = 0.01
_MEMORY = 16 * 1024 * 1024  # a pattern's own size and its backtracking stack
_COMPILED_KEPT = 256

_SEARCH = f"""
(function () {{
  const compiled = new Map();
  return function search(pattern, name) {{
    let expression = compiled.get(pattern);
    if (expression === undefined) {{
      expression = new RegExp(pattern);
      if (compiled.size >= {_COMPILED_KEPT}) compiled.clear();
      compiled.set(pattern, expression);
    }}
    return expression.test(name);
  }};
}})()
"""


class PatternError(ValueError):
    """A pattern that is not a regular expression; its message is the engine's."""


class PatternSearch:
    """One thread's context for searching patterns (a context serves one thread at a
    time); `too_slow` keeps the patterns whose search ran past the limit, for the log."""

    def __init__(self) -> None:
        import quickjs

        from pfunc.sandbox.time_limit import TimeLimit

        self._quickjs = quickjs
        self._context = quickjs.Context()
        self._context.set_memory_limit(_MEMORY)
        self._limit = TimeLimit(self._context)
        self._search: Any = self._context.eval(_SEARCH)
        self.too_slow: set[str] = set()

    def check(self, pattern: str) -> None:
        """Raises PatternError when `pattern` is not a regular expression."""
        self.search(pattern, "")

    def search(self, pattern: str, name: str) -> bool:
        """Whether `pattern` is found in `name`; False when the search runs past the
        limit. Raises PatternError for a pattern that is not a regular expression."""
        self._limit.arm(SEARCH_SECONDS)
        try:
            return self._search(pattern, name) is True
        except self._quickjs.JSException as error:
            said = str(error).partition("\n")[0]
            if "interrupted" in said:
                self._slow(pattern)
                return False
            raise PatternError(said.removeprefix("SyntaxError: ")) from None
        except MemoryError:
            self._slow(pattern)
            return False
        finally:
            self._limit.arm(None)

    def _slow(self, pattern: str) -> None:
        if len(self.too_slow) >= _COMPILED_KEPT:
            self.too_slow.clear()
        self.too_slow.add(pattern)


_per_thread = threading.local()


def pattern_search() -> PatternSearch:
    """This thread's PatternSearch, made on first use (no engine for a project with no
    pattern grants)."""
    search: PatternSearch | None = getattr(_per_thread, "search", None)
    if search is None:
        search = _per_thread.search = PatternSearch()
    return search
