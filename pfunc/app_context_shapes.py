"""App Context records and their wire shapes: what a user's or a channel's metadata and
a membership hold, how a PATCH body is checked, how a record is shown for an `include`
list, how lists are sorted and paged, and PubNub's error bodies (from the recorded
exchanges in ../shared/wire and the SDKs' parsers)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pfunc import jsonio
from pfunc.app_context_filter import FilterError, fields_of

MAX_LIMIT = 100  # PubNub's page size: the default and the most a page holds


@dataclass(frozen=True)
class Kind:
    name: str  # "uuid" or "channel": the path segment and the event's "type"
    fields: tuple[str, ...]  # the fields of its metadata besides custom, status, type
    noun: str  # how PubNub's messages name it

    def __str__(self) -> str:
        return self.name


USER = Kind("uuid", ("name", "externalId", "profileUrl", "email"), "User")
CHANNEL = Kind("channel", ("name", "description"), "Channel")
KINDS = {"uuid": USER, "channel": CHANNEL}


class ObjectsError(Exception):
    """An App Context call PubNub refuses: the status and the error body it answers."""

    def __init__(self, status: int, message: str, details: list[dict[str, str]] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details or []

    def to_json(self) -> dict[str, Any]:
        error: dict[str, Any] = {"message": self.message, "source": "objects"}
        if self.details:
            error["details"] = self.details
        return {"status": self.status, "error": error}


def invalid(message: str, location: str, where: str = "body") -> ObjectsError:
    """PubNub's 400 for input it will not take, naming the part that was wrong."""
    return ObjectsError(
        400,
        "Request payload contained invalid input." if where == "body" else "Invalid request.",
        [{"message": message, "location": location, "locationType": where}],
    )


@dataclass
class Obj:
    """One user's or channel's metadata: its fields (and custom, status, type)."""

    id: str
    values: dict[str, Any]
    updated: str
    etag: str


@dataclass
class Link:
    """One membership: a uuid in a channel, with its own custom, status and type."""

    uuid: str
    channel: str
    values: dict[str, Any] = field(default_factory=dict)
    updated: str = ""
    etag: str = ""


def stamp(timetoken: str) -> str:
    """A timetoken as PubNub writes `updated`: ISO 8601 UTC with microseconds."""
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(timetoken) // 10)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def object_etag(values: dict[str, Any], updated: str) -> str:
    return hashlib.md5(jsonio.dumps([values, updated]).encode()).hexdigest()


def link_etag(values: dict[str, Any]) -> str:
    """PubNub's membership eTags follow the content (equal for equal custom data)."""
    digest = hashlib.sha1(json.dumps(values, sort_keys=True).encode()).digest()
    return base64.b64encode(digest[:10]).decode().rstrip("=")


# --- input ---------------------------------------------------------------------------


def _optional_text(value: Any, location: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise invalid(f"{location} must be a string or null", location)
    return value


def _custom(value: Any, location: str) -> dict[str, Any] | None:
    """custom: a flat object of strings, numbers and booleans (PubNub keeps no nesting)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise invalid(f"{location} must be an object or null", location)
    for key, item in value.items():
        if item is not None and not isinstance(item, str | int | float | bool):
            raise invalid(
                f"{location}.{key} must be a string, a number or a boolean (custom is flat)",
                f"{location}.{key}",
            )
    return dict(value)


def metadata_changes(kind: Kind, body: Any) -> dict[str, Any]:
    """The fields a PATCH of a user or channel sets: those present (null clears one)."""
    if not isinstance(body, dict):
        raise invalid("the body must be a JSON object", "body")
    changes: dict[str, Any] = {}
    for key, value in body.items():
        if key == "custom":
            changes[key] = _custom(value, key)
        elif key in kind.fields or key in ("status", "type"):
            changes[key] = _field_text(value, key)
        # Anything else is left out: PubNub's REST reference, "Invalid property names are
        # silently ignored and will not cause a request to fail."
    return changes


# PubNub's schema of the metadata fields (the REST reference): at most this many
# characters; a name that is not empty nor only whitespace.
_MAX_CHARACTERS = {
    "name": 2048,
    "externalId": 2048,
    "profileUrl": 2048,
    "email": 320,
    "type": 50,
    "status": 50,
}


def _field_text(value: Any, key: str) -> str | None:
    text = _optional_text(value, key)
    if text is None:
        return None
    if key == "name" and not text.strip():
        raise invalid("name must not be empty or consist only of whitespace characters", key)
    most = _MAX_CHARACTERS.get(key)
    if most is not None and len(text) > most:
        raise invalid(f"{key} is {len(text):,} characters; at most {most:,}", key)
    return text


def link_changes(item: Any, location: str) -> dict[str, Any]:
    """The custom, status and type a membership item of a PATCH sets (those present)."""
    changes: dict[str, Any] = {}
    for key in ("custom", "status", "type"):
        if key in item:
            value = item[key]
            changes[key] = (
                _custom(value, f"{location}.{key}")
                if key == "custom"
                else _optional_text(value, f"{location}.{key}")
            )
    return changes


def parse_include(text: str | Iterable[str]) -> frozenset[str]:
    """The include flags (comma-separated on the wire); unknown ones are ignored, as
    newer SDKs may ask for more than pfunc knows."""
    words = text.split(",") if isinstance(text, str) else list(text)
    return frozenset(word.strip() for word in words if word.strip())


def parse_limit(value: int | str | None) -> int:
    if value is None or value == "":
        return MAX_LIMIT
    try:
        limit = int(value)
    except (TypeError, ValueError):
        raise invalid("limit must be a whole number", "limit", "query") from None
    if limit < 0:
        raise invalid("limit must not be negative", "limit", "query")
    return min(limit, MAX_LIMIT)


def parse_sort(keys: Iterable[str], kind: str) -> list[tuple[list[str], bool]]:
    """`name:desc,updated` (or repeated parameters) -> [(path, descending)]."""
    allowed = fields_of(kind)
    found = []
    for key in keys:
        for part in key.split(","):
            name, _, direction = part.strip().partition(":")
            path = name.split(".")
            direction = direction.lower() or "asc"
            sortable = name and "custom" not in path and allowed(path)
            if not sortable or direction not in ("asc", "desc"):
                raise invalid(f"cannot sort by {part.strip()!r}", "sort", "query")
            found.append((path, direction == "desc"))
    return found


def cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(str(offset).encode()).decode().rstrip("=")


def read_cursor(text: str, name: str) -> int:
    try:
        decoded = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
        if decoded.isascii() and decoded.isdigit():
            return int(decoded)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise invalid(f"{name} is not a page cursor this server gave", name, "query")


def check_filter(error: FilterError) -> ObjectsError:
    return invalid(str(error), "filter", "query")


# --- output --------------------------------------------------------------------------


def show_object(kind: Kind, obj: Obj, include: frozenset[str], prefix: str = "") -> dict:
    """A user or channel as PubNub answers it: type, status and custom only when the
    include list (or, nested, `channel.custom`...) asks for them."""
    shown: dict[str, Any] = {"id": obj.id}
    for name in kind.fields:
        shown[name] = obj.values.get(name)
    for name in ("type", "status", "custom"):
        if prefix + name in include:
            shown[name] = obj.values.get(name)
    shown["updated"], shown["eTag"] = obj.updated, obj.etag
    return shown


def show_link(link: Link, other: Kind, obj: Obj | None, include: frozenset[str]) -> dict:
    """A membership (other = CHANNEL) or a member (other = USER), the other side shown
    in full when included and known, else by id."""
    prefix = other.name + "."
    other_id = link.channel if other is CHANNEL else link.uuid
    nested = other.name in include or any(word.startswith(prefix) for word in include)
    shown: dict[str, Any] = {
        other.name: show_object(other, obj, include, prefix)
        if nested and obj is not None
        else {"id": other_id}
    }
    for name in ("type", "status", "custom"):
        if name in include:
            shown[name] = link.values.get(name)
    shown["updated"], shown["eTag"] = link.updated, link.etag
    return shown


def filter_view(obj: Obj) -> dict[str, Any]:
    """Everything a filter or a sort may read of a user or channel."""
    return {**obj.values, "id": obj.id, "updated": obj.updated}


def link_view(link: Link, other: Kind, obj: Obj | None) -> dict[str, Any]:
    other_id = link.channel if other is CHANNEL else link.uuid
    nested = filter_view(obj) if obj is not None else {"id": other_id}
    return {**link.values, "updated": link.updated, other.name: nested}


def _collate(value: Any) -> tuple[Any, ...]:
    """Order text as PubNub's lists do (letters and digits first, case aside: `a-1`
    near `A1`); numbers and booleans by value."""
    if isinstance(value, str):
        folded = value.casefold()
        return (1, "".join(c for c in folded if c.isalnum()), folded, value)
    return (0, value, "", "")


def ordered(
    views: list[tuple[dict[str, Any], Any]],
    keys: list[tuple[list[str], bool]],
    default: list[str],
) -> list[Any]:
    """Items sorted by the (path, descending) keys, then by `default`; a missing value
    last either way."""

    def value(view: dict[str, Any], path: list[str]) -> Any:
        for part in path:
            view = view.get(part) if isinstance(view, dict) else None  # type: ignore[assignment]
        return view

    rows = sorted(views, key=lambda row: _collate(value(row[0], default)))
    for path, descending in reversed(keys):
        present = [row for row in rows if value(row[0], path) is not None]
        missing = [row for row in rows if value(row[0], path) is None]
        present.sort(key=lambda row: _collate(value(row[0], path)), reverse=descending)
        rows = present + missing
    return [item for _, item in rows]


def page(
    items: list[Any],
    *,
    limit: int,
    start: str | None,
    end: str | None,
    count: bool,
    show: Callable[[Any], dict[str, Any]],
) -> dict[str, Any]:
    """One page of a list as PubNub answers it: data, totalCount when counted, and the
    opaque next and prev cursors."""
    offset, stop = 0, len(items)
    if start:
        offset = read_cursor(start, "start")
    elif end:  # the page before `end` (a page's prev cursor)
        stop = read_cursor(end, "end")
        offset = max(0, stop - limit)
    chosen = items[offset : min(offset + limit, stop)]
    answer: dict[str, Any] = {"status": 200, "data": [show(item) for item in chosen]}
    if count:
        answer["totalCount"] = len(items)
    if chosen:
        answer["next"] = cursor(offset + len(chosen))
        if offset > 0:
            answer["prev"] = cursor(offset)
    return answer
