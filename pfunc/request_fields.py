"""An HTTP request's query and headers as a handler reads them: one value a name, as
Node (PubNub's runtime) reads a repeated one. Every front end (pfunc dev, pfunc run's
flags, scenarios) reads them through these, so a repeated name means the same in each."""

from __future__ import annotations

from collections.abc import Iterable

# Node (PubNub's runtime) keeps the first of a repeated header among these, joins a
# repeated cookie with "; " and any other with ", " (http.IncomingMessage.headers).
_SINGLE_HEADERS = {
    "age",
    "authorization",
    "content-length",
    "content-type",
    "etag",
    "expires",
    "from",
    "host",
    "if-modified-since",
    "if-unmodified-since",
    "last-modified",
    "location",
    "max-forwards",
    "proxy-authorization",
    "referer",
    "retry-after",
    "server",
    "user-agent",
}


def joined_headers(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Headers by lower-case name (X-A and x-a are one header), a repeated one read as
    Node reads it: the first kept, or the values joined."""
    headers: dict[str, str] = {}
    for name, value in pairs:
        key = name.lower()
        kept = headers.get(key)
        if kept is None:
            headers[key] = value
        elif key not in _SINGLE_HEADERS:
            headers[key] = f"{kept}{'; ' if key == 'cookie' else ', '}{value}"
    return headers


def first_values(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """A query string's parameters by name: a repeated name's first value, as
    URLSearchParams.get gives it, in every front end (pfunc dev's URLs, --query)."""
    query: dict[str, str] = {}
    for name, value in pairs:
        query.setdefault(name, value)
    return query
