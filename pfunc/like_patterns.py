"""LIKE patterns, as PubNub's filters read them (subscribe filters, App Context filters):
`*` any run of characters, a backslash makes the next character plain, case ignored."""

from __future__ import annotations

from collections.abc import Callable


def like_matcher(raw: str) -> Callable[[str], bool]:
    """A LIKE pattern's test: `*` any run of characters, a backslash makes the next one
    plain; ignoring case. Matched piece by piece, never by a backtracking regex, so a
    pattern of many stars costs no more than its length."""
    pieces, current, index = [], [], 0
    while index < len(raw):
        char = raw[index]
        if char == "\\" and index + 1 < len(raw):
            current.append(raw[index + 1])
            index += 2
            continue
        if char == "*":
            pieces.append("".join(current).casefold())
            current = []
        else:
            current.append(char)
        index += 1
    pieces.append("".join(current).casefold())

    def matches(text: str) -> bool:
        text = text.casefold()
        if len(pieces) == 1:
            return text == pieces[0]
        first, *middle, last = pieces
        if not text.startswith(first) or len(text) < len(first) + len(last):
            return False
        position, stop = len(first), len(text) - len(last)
        for piece in middle:  # the earliest place of each piece leaves most room
            found = text.find(piece, position, stop)
            if found < 0:
                return False
            position = found + len(piece)
        return text.endswith(last)

    return matches
