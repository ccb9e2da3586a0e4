"""The patterns of Access Manager grants (`^chat-.*$`), searched in resource names.

PubNub's are RE2 patterns (its manage-permissions page: "read on all channels matching
the RE2 pattern ^channel-[A-Za-z0-9]$"), and so are pfunc's, with Google's RE2: the same
syntax (`(?i)`, `\\A`...`\\z`, `\\p{Greek}`; no backreferences or lookaround, which a grant
is refused for), and a search in time linear in the name, so that no pattern can hold
the dev server's loop (`^(a+)+$` against forty `a`s and a `!` took Python's `re`
minutes, every request waiting). google-re2 is imported on the first pattern only.
"""

from __future__ import annotations

import threading
from typing import Any

_COMPILED_KEPT = 1024  # patterns: more than any token holds
_compiled: dict[str, Any] = {}  # pattern: compiled, least recently used first
_keeping = threading.Lock()  # (grants are checked on the server's loop and on threads)


class PatternError(ValueError):
    """A pattern that is not an RE2 regular expression; its message is RE2's."""


def _compile(pattern: str) -> Any:
    with _keeping:
        expression = _compiled.pop(pattern, None)
        if expression is not None:
            _compiled[pattern] = expression  # (to the end: the most recently used)
            return expression
    import re2

    options = re2.Options()
    options.log_errors = False  # (RE2 would write each refused pattern to stderr)
    try:
        expression = re2.compile(pattern, options)
    except re2.error as error:
        said = error.args[0] if error.args else "not valid"
        text = said.decode("utf-8", "replace") if isinstance(said, bytes) else str(said)
        raise PatternError(text) from None
    except UnicodeEncodeError:
        raise PatternError("a lone surrogate is not valid Unicode") from None
    with _keeping:
        if len(_compiled) >= _COMPILED_KEPT:  # the longest unused goes (dicts keep order)
            del _compiled[next(iter(_compiled))]
        _compiled[pattern] = expression
    return expression


def check(pattern: str) -> None:
    """Raises PatternError when `pattern` is not an RE2 regular expression."""
    _compile(pattern)


def search(pattern: str, name: str) -> bool:
    """Whether `pattern` is found in `name` (anchors pin the whole name). Raises
    PatternError for a pattern that is not an RE2 regular expression."""
    try:
        return _compile(pattern).search(name) is not None
    except UnicodeEncodeError:  # a name no request can carry (a lone surrogate)
        return False
