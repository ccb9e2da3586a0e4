"""What every endpoint of the dev server shares: PubNub's error shape, and reading the
parts of a request the SDKs send the same way everywhere (flags, comma-separated
channel lists, channel groups, the subscribe key)."""

from __future__ import annotations

import json
import re
import urllib.parse
from functools import partial
from typing import Any

from aiohttp import web

from pfunc.channels import PRESENCE_SUFFIX, channel_problem, has_control_character

# PubNub's services answer compact JSON (`[1,"Sent","…"]`, `{"t":{…},"m":[…]}`), all but
# Presence, whose answers have a space after each separator (`{"status": 200, …}`), as the
# SDKs' recorded fixtures show. No SDK reads the spacing; a log of the raw answer, or a
# test comparing bytes, does.
_COMPACT = partial(json.dumps, separators=(",", ":"))


# pfunc's own endpoints (the console, /pfunc/run, uploads checked by their signed policy)
# and on-request functions' routes: not PubNub's API, so none of its rules (Access
# Manager, JSONP, its names' escapes) applies to them.
NOT_PUBNUB_PREFIXES = ("/pfunc/", "/v1/blocks/")


def wire_json(body: Any, status: int = 200) -> web.Response:
    """A PubNub service's JSON answer, written as that service writes it (compact)."""
    return web.json_response(body, status=status, dumps=_COMPACT)


def presence_json(body: Any, status: int = 200) -> web.Response:
    """The Presence service's JSON answer: a space after each separator."""
    return web.json_response(body, status=status)


def changing_get(path: str, handler: Any) -> web.RouteDef:
    """A GET route that changes state (publish, subscribe, grant, a group's add...):
    PubNub's REST API changes state with GETs, and HEAD must not, so HEAD is refused
    there (405, in PubNub's shape) rather than run the GET and drop its body, as aiohttp
    does for a read. A link checker or `curl -I` changes nothing."""
    return web.get(path, handler, allow_head=False)


def pubnub_error(status: int, message: str, service: str = "pfunc") -> web.Response:
    return wire_json(
        {"status": status, "error": True, "message": message, "service": service}, status=status
    )


def header_text(value: str) -> str:
    """A header value as Node (PubNub's runtime) reads it: bytes that are not UTF-8 are
    Latin-1 characters there, where aiohttp keeps them as lone surrogates (which no JSON
    or UTF-8 writer takes). Encoding is the check: C, and it fails only on those."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        try:
            return value.encode("utf-8", "surrogateescape").decode("latin-1")
        except UnicodeEncodeError:  # a surrogate no byte made: said as U+FFFD
            return value.encode("utf-8", "replace").decode("utf-8")
    return value


def client_meta(request: web.Request) -> dict[str, str]:
    """What a function's `request.meta` says of the client that sent `request`: its user
    agent, address and the origin it was configured with (the Host it asked), as PubNub
    reports the publishing client's."""
    meta = {}
    if "User-Agent" in request.headers:
        meta["useragent"] = header_text(request.headers["User-Agent"])
    if request.remote:
        meta["clientip"] = request.remote
    if "Host" in request.headers:
        meta["origin"] = header_text(request.headers["Host"])
    return meta


_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


def undecodable(raw: str) -> bool:
    """A raw (still percent-encoded) URL part that does not decode to text: a `%` not
    followed by two hex digits, or escapes that are not UTF-8. Decoders keep both as
    they were, so the text a client sent would arrive changed, not refused."""
    if _BAD_ESCAPE.search(raw):
        return True
    try:
        urllib.parse.unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def flag(request: web.Request, name: str) -> bool:
    """A boolean query parameter, as the SDKs write it (true or 1)."""
    return request.query.get(name, "").lower() in ("true", "1")


def names(text: str) -> list[str]:
    """Channels (or groups) from a comma-separated path segment or parameter; the SDKs
    write "," for "none"."""
    return [name for name in text.split(",") if name and name != ","]


def channel_groups(request: web.Request) -> list[str]:
    return names(request.query.get("channel-group", ""))


def query_count(request: web.Request, name: str, default: int, most: int) -> int:
    """A count or page size from a query parameter, 1 to `most`; `default` when it is
    absent or not ASCII digits (a long one is read by its first six)."""
    text = request.query.get(name, "")
    if not text.isascii() or not text.isdigit():
        return default
    return max(1, min(int(text[:6]), most))


def wrong_key(request: web.Request, subscribe_key: str, service: str) -> web.Response | None:
    """PubNub's answer to a request for another keyset, or None when the key is ours."""
    if request.match_info.get("sub") != subscribe_key:
        return pubnub_error(400, "Invalid Subscribe Key", service)
    return None


def subscribe_refusal(request: web.Request) -> web.Response | None:
    """400 Invalid Channel for a subscribe, heartbeat or leave naming a channel no message
    could reach: a `*` that does not end a wildcard as PubNub's do (chat*, a.*.b), a
    control character, or escapes that do not decode (the router keeps `%ff` as it
    stands). Such a subscribe would wait for ever. Other characters PubNub's article on
    channel names lists are not refused here: its history service answers them (recorded),
    and a subscribe to one is no silent failure."""
    for name in names(request.match_info.get("channels", "")):
        base = name.removesuffix(PRESENCE_SUFFIX)
        problem = None
        if "*" in base or has_control_character(base):
            problem = channel_problem(base)
        if problem is None and "%" in name and undecodable(request.raw_path.split("?")[0]):
            problem = "its escapes do not decode to UTF-8 text"
        if problem is not None:
            return pubnub_error(400, f"Invalid Channel {name[:60]!r}: {problem}", "subscribe")
    return None
