"""App Context (PubNub's Objects v2): users' and channels' metadata and the memberships
between them, kept per keyset in the project's SQLite store, every change announced to
subscribers as PubNub does (an objects event, e = 2, on the channel of the user or
channel it changed).

The dev server's /v2/objects endpoints and the `pubnub.objects` module of functions
call this one API. Each method answers the dict PubNub's REST answer carries
(`{"status": 200, "data": ...}`), or raises ObjectsError holding PubNub's error answer.
Memberships do not need the user's or the channel's metadata to exist, and removing
metadata leaves memberships alone (PubNub's keysets without referential integrity).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from pfunc import jsonio
from pfunc.announcement import Announcement
from pfunc.app_context_filter import FilterError, Predicate, parse_filter
from pfunc.app_context_shapes import (
    CHANNEL,
    USER,
    Kind,
    Link,
    Obj,
    ObjectsError,
    check_filter,
    filter_view,
    invalid,
    link_changes,
    link_etag,
    link_view,
    metadata_changes,
    object_etag,
    ordered,
    page,
    parse_include,
    parse_limit,
    parse_sort,
    show_link,
    show_object,
    stamp,
)
from pfunc.channels import has_control_character
from pfunc.store import KVStore

OBJECTS_EVENT = 2  # the subscribe envelope's "e" for App Context events
ALL = ("custom", "status", "type")
_ATTEMPTS = 5  # optimistic writes retried when another writer got in between


@dataclass(frozen=True)
class Listing:
    """How a list call filters, sorts and pages, as its query parameters say."""

    include: frozenset[str]
    predicate: Predicate | None
    sort: list[tuple[list[str], bool]]
    limit: int
    start: str | None
    end: str | None
    count: bool


class AppContext:
    def __init__(
        self,
        store: KVStore,
        keyset: str,
        timetoken: Callable[[], str],
        announce: Callable[[Announcement], None],
    ) -> None:
        self.store = store
        self.keyset = keyset
        self.timetoken = timetoken  # "updated" follows the server's timetokens
        self.announce = announce

    # --- users (uuid metadata) -------------------------------------------------------

    async def get_uuid_metadata(self, uuid: str, *, include: Iterable[str] = ALL) -> dict:
        return await self._get(USER, uuid, include)

    async def set_uuid_metadata(
        self, uuid: str, data: dict, *, include: Iterable[str] = ALL, if_match: str | None = None
    ) -> dict:
        return await self._set(USER, uuid, data, include, if_match)

    async def remove_uuid_metadata(self, uuid: str) -> dict:
        return await self._remove(USER, uuid)

    async def get_all_uuid_metadata(self, **listing: Any) -> dict:
        return await self._list(USER, self.listing(kind="uuid", **listing))

    # --- channels (channel metadata) -------------------------------------------------

    async def get_channel_metadata(self, channel: str, *, include: Iterable[str] = ALL) -> dict:
        return await self._get(CHANNEL, channel, include)

    async def set_channel_metadata(
        self,
        channel: str,
        data: dict,
        *,
        include: Iterable[str] = ALL,
        if_match: str | None = None,
    ) -> dict:
        return await self._set(CHANNEL, channel, data, include, if_match)

    async def remove_channel_metadata(self, channel: str) -> dict:
        return await self._remove(CHANNEL, channel)

    async def get_all_channel_metadata(self, **listing: Any) -> dict:
        return await self._list(CHANNEL, self.listing(kind="channel", **listing))

    # --- memberships (a user's channels) and members (a channel's users) --------------
    # Items name the other side by id: "ch", {"id": "ch", "custom": {...}, "status": ...}
    # (the SDKs' form) or {"channel": {"id": "ch"}, ...} (the wire's).

    async def get_memberships(self, uuid: str, **listing: Any) -> dict:
        return await self.manage_memberships(uuid, **listing)

    async def set_memberships(self, uuid: str, channels: list[Any], **listing: Any) -> dict:
        return await self.manage_memberships(uuid, set=channels, **listing)

    async def remove_memberships(self, uuid: str, channels: list[Any], **listing: Any) -> dict:
        return await self.manage_memberships(uuid, delete=channels, **listing)

    async def manage_memberships(
        self, uuid: str, *, set: Iterable[Any] = (), delete: Iterable[Any] = (), **listing: Any
    ) -> dict:
        query = self.listing(kind="membership", **listing)
        return await self._manage(USER, uuid, list(set), list(delete), query)

    async def get_channel_members(self, channel: str, **listing: Any) -> dict:
        return await self.manage_channel_members(channel, **listing)

    async def set_channel_members(self, channel: str, uuids: list[Any], **listing: Any) -> dict:
        return await self.manage_channel_members(channel, set=uuids, **listing)

    async def remove_channel_members(self, channel: str, uuids: list[Any], **listing: Any) -> dict:
        return await self.manage_channel_members(channel, delete=uuids, **listing)

    async def manage_channel_members(
        self, channel: str, *, set: Iterable[Any] = (), delete: Iterable[Any] = (), **listing: Any
    ) -> dict:
        query = self.listing(kind="member", **listing)
        return await self._manage(CHANNEL, channel, list(set), list(delete), query)

    @staticmethod
    def listing(
        *,
        kind: str,
        include: str | Iterable[str] = (),
        filter: str | None = None,
        sort: str | Iterable[str] = (),
        limit: int | str | None = None,
        start: str | None = None,
        end: str | None = None,
        count: bool = False,
    ) -> Listing:
        """A list call's options, checked: ObjectsError (400) for a malformed filter,
        sort, limit or cursor."""
        try:
            predicate = parse_filter(filter, kind) if filter else None
        except FilterError as error:
            raise check_filter(error) from None
        return Listing(
            parse_include(include),
            predicate,
            parse_sort([sort] if isinstance(sort, str) else sort, kind),
            parse_limit(limit),
            start or None,
            end or None,
            bool(count),
        )

    # --- metadata ----------------------------------------------------------------------

    async def _get(self, kind: Kind, id: str, include: Iterable[str]) -> dict:
        _check_id(id, kind)
        found = await self._load(kind, id)
        if found is None:
            raise ObjectsError(404, "Requested object was not found.")
        return {"status": 200, "data": show_object(kind, found, parse_include(include))}

    async def _set(
        self, kind: Kind, id: str, body: Any, include: Iterable[str], if_match: str | None
    ) -> dict:
        _check_id(id, kind)
        changes = metadata_changes(kind, body)
        for _ in range(_ATTEMPTS):
            old = await self._load(kind, id)
            if if_match is not None and (old is None or old.etag != if_match):
                break
            base = old.values if old else dict.fromkeys((*kind.fields, *ALL))
            values = {**base, **changes}
            updated = stamp(self.timetoken())
            new = Obj(id, values, updated, object_etag(values, updated))
            if await self._write(kind, new, old):
                event = {"id": id, **changes, "updated": new.updated, "eTag": new.etag}
                self._event(id, "set", kind.name, event)
                return {"status": 200, "data": show_object(kind, new, parse_include(include))}
        raise ObjectsError(412, f"{kind.noun} to update has been modified after it was read.")

    async def _write(self, kind: Kind, new: Obj, old: Obj | None) -> bool:
        """Store `new` if the record is still `old` (None: still absent)."""
        record = _json(new.values)
        if old is None:
            rows = await self.store.execute(
                "INSERT INTO app_context(keyset,kind,id,record,updated,etag) VALUES(?,?,?,?,?,?)"
                " ON CONFLICT(keyset,kind,id) DO NOTHING RETURNING id",
                (self.keyset, kind.name, new.id, record, new.updated, new.etag),
            )
        else:
            rows = await self.store.execute(
                "UPDATE app_context SET record=?, updated=?, etag=? "
                "WHERE keyset=? AND kind=? AND id=? AND etag=? RETURNING id",
                (record, new.updated, new.etag, self.keyset, kind.name, new.id, old.etag),
            )
        return bool(rows)

    async def _remove(self, kind: Kind, id: str) -> dict:
        _check_id(id, kind)
        rows = await self.store.execute(
            "DELETE FROM app_context WHERE keyset=? AND kind=? AND id=? RETURNING id",
            (self.keyset, kind.name, id),
        )
        if rows:
            self._event(id, "delete", kind.name, {"id": id})
        return {"status": 200, "data": None}

    async def _list(self, kind: Kind, query: Listing) -> dict:
        rows = await self.store.execute(
            "SELECT id, record, updated, etag FROM app_context WHERE keyset=? AND kind=?",
            (self.keyset, kind.name),
        )
        views = [(filter_view(obj), obj) for obj in map(_obj, rows)]
        if query.predicate is not None:
            views = [row for row in views if query.predicate(row[0])]
        items = ordered(views, query.sort, ["id"])
        return page(
            items,
            limit=query.limit,
            start=query.start,
            end=query.end,
            count=query.count,
            show=lambda obj: show_object(kind, obj, query.include),
        )

    async def _load(self, kind: Kind, id: str) -> Obj | None:
        rows = await self.store.execute(
            "SELECT id, record, updated, etag FROM app_context WHERE keyset=? AND kind=? AND id=?",
            (self.keyset, kind.name, id),
        )
        return _obj(rows[0]) if rows else None

    async def _objects(self, kind: Kind, ids: list[str]) -> dict[str, Obj]:
        found: dict[str, Obj] = {}
        for at in range(0, len(ids), 500):  # SQLite's limit on parameters, with room
            chunk = ids[at : at + 500]
            rows = await self.store.execute(
                "SELECT id, record, updated, etag FROM app_context WHERE keyset=? AND kind=? "
                f"AND id IN ({','.join('?' * len(chunk))})",
                (self.keyset, kind.name, *chunk),
            )
            found.update((row[0], _obj(row)) for row in rows)
        return found

    # --- memberships -----------------------------------------------------------------

    async def _manage(
        self, side: Kind, id: str, to_set: list[Any], to_delete: list[Any], query: Listing
    ) -> dict:
        """Memberships of a user (side USER) or members of a channel (side CHANNEL):
        remove `to_delete`, set `to_set`, then answer the list."""
        _check_id(id, side)
        other = CHANNEL if side is USER else USER
        sets = [_link_item(item, other, f"set[{n}]") for n, item in enumerate(to_set)]
        deletes = [_link_item(item, other, f"delete[{n}]")[0] for n, item in enumerate(to_delete)]
        for other_id in deletes:
            uuid, channel = (id, other_id) if side is USER else (other_id, id)
            rows = await self.store.execute(
                "DELETE FROM app_context_links WHERE keyset=? AND uuid=? AND channel=? "
                "RETURNING uuid",
                (self.keyset, uuid, channel),
            )
            if rows:
                self._link_event("delete", Link(uuid, channel), {})
        for other_id, changes in sets:
            uuid, channel = (id, other_id) if side is USER else (other_id, id)
            await self._set_link(uuid, channel, changes)
        return await self._links(side, id, query)

    async def _set_link(self, uuid: str, channel: str, changes: dict[str, Any]) -> None:
        rows = await self.store.execute(
            "SELECT record FROM app_context_links WHERE keyset=? AND uuid=? AND channel=?",
            (self.keyset, uuid, channel),
        )
        base = jsonio.loads(rows[0][0]) if rows else dict.fromkeys(ALL)
        values = {**base, **changes}
        link = Link(uuid, channel, values, stamp(self.timetoken()), link_etag(values))
        await self.store.execute(
            "INSERT INTO app_context_links(keyset,uuid,channel,record,updated,etag) "
            "VALUES(?,?,?,?,?,?) ON CONFLICT(keyset,uuid,channel) DO UPDATE SET "
            "record=excluded.record, updated=excluded.updated, etag=excluded.etag",
            (self.keyset, uuid, channel, _json(values), link.updated, link.etag),
        )
        self._link_event("set", link, changes)

    async def _links(self, side: Kind, id: str, query: Listing) -> dict:
        other = CHANNEL if side is USER else USER
        column = "uuid" if side is USER else "channel"
        rows = await self.store.execute(
            "SELECT uuid, channel, record, updated, etag FROM app_context_links "
            f"WHERE keyset=? AND {column}=?",
            (self.keyset, id),
        )
        links = [Link(row[0], row[1], jsonio.loads(row[2]), row[3], row[4]) for row in rows]
        ids = [link.channel if other is CHANNEL else link.uuid for link in links]
        objects = await self._objects(other, ids)
        views = [
            (link_view(link, other, objects.get(other_id)), (link, objects.get(other_id)))
            for link, other_id in zip(links, ids, strict=True)
        ]
        if query.predicate is not None:
            views = [row for row in views if query.predicate(row[0])]
        items = ordered(views, query.sort, [other.name, "id"])
        return page(
            items,
            limit=query.limit,
            start=query.start,
            end=query.end,
            count=query.count,
            show=lambda item: show_link(item[0], other, item[1], query.include),
        )

    # --- events ------------------------------------------------------------------------

    def _event(self, channel: str, event: str, type: str, data: dict[str, Any]) -> None:
        payload = {"source": "objects", "version": "2.0", "event": event, "type": type}
        self.announce((channel, {**payload, "data": data}, OBJECTS_EVENT, None))

    def _link_event(self, event: str, link: Link, changes: dict[str, Any]) -> None:
        """A membership change reaches the channel's subscribers and the user's channel."""
        data: dict[str, Any] = {"channel": {"id": link.channel}, "uuid": {"id": link.uuid}}
        if event == "set":
            data.update(changes, updated=link.updated, eTag=link.etag)
        for channel in dict.fromkeys((link.channel, link.uuid)):
            self._event(channel, event, "membership", data)


# PubNub's REST reference for App Context: an id "must not be empty and can contain up
# to 92 UTF-8 byte sequences", without , / \ * : control characters or Unicode zero.
MAX_ID_CHARACTERS = 92
_ID_FORBIDDEN = set(",/\\*:")


def id_problem(id: Any) -> str | None:
    """Why `id` cannot name a user or channel in App Context, or None."""
    if not isinstance(id, str) or not id:
        return "must be a non-empty string"
    if len(id) > MAX_ID_CHARACTERS:
        return f"has {len(id)} characters; at most {MAX_ID_CHARACTERS}"
    if set(id) & _ID_FORBIDDEN or has_control_character(id):
        return "holds a character PubNub prohibits (, / \\ * : or a control character)"
    return None


def _check_id(id: Any, kind: Kind) -> None:
    problem = id_problem(id)
    if problem is not None:
        raise invalid(f"the {kind.noun.lower()} id {problem}", "id", "path")


def _link_item(item: Any, other: Kind, location: str) -> tuple[str, dict[str, Any]]:
    """(the other side's id, the custom/status/type it sets) of one membership item."""
    if isinstance(item, str) and item:
        problem = id_problem(item)
        if problem is not None:
            raise invalid(f"{location}: the {other.noun.lower()} id {problem}", location)
        return item, {}
    if isinstance(item, dict):
        named = item.get(other.name)
        other_id = named.get("id") if isinstance(named, dict) else item.get("id")
        if isinstance(other_id, str) and other_id:
            problem = id_problem(other_id)
            if problem is not None:
                raise invalid(f"{location}: the {other.noun.lower()} id {problem}", location)
            return other_id, link_changes(item, location)
    raise invalid(f"{location} must name a {other.noun.lower()} by its id", location)


def _json(values: dict[str, Any]) -> str:
    try:
        return jsonio.dumps(values)
    except jsonio.JSONValueError as error:
        raise invalid(str(error), "custom") from None


def _obj(row: Any) -> Obj:
    return Obj(row[0], jsonio.loads(row[1]), row[2], row[3])
