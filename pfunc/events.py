"""Event kinds, event types, and the one builder every front end calls.

`KINDS` is the single table of event kinds: the project parser, the bus, the CLI, the
dev server, scenarios and the pytest plugin all read it. A new event kind is a new row
here plus its entry points in the sandbox.

`build_event(kind, spec)` turns an `EventSpec` (CLI flags, a trigger's JSON, a scenario
step, a plugin call, the dev server's own presence change) into the event a handler
receives, with the same defaults and the same errors for all.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import parse_qsl

from pfunc.channels import DEFAULT_CHANNEL
from pfunc.errors import PfuncUsageError
from pfunc.file_messages import DEFAULT_FILE, as_file_message, file_message
from pfunc.jsonio import compact
from pfunc.request_fields import first_values, joined_headers

# --- the table of event kinds -----------------------------------------------------------

MESSAGE, REQUEST, INTERVAL = "message", "request", "interval"
FILE = "publish-file"  # the trigger (and bus verb) of a file message


@dataclass(frozen=True)
class EventKind:
    """One row of the table: how an event kind is triggered and how its handler completes."""

    name: str  # as pfunc.toml, --event and reports spell it
    family: str  # MESSAGE (request.message), REQUEST (HTTP) or INTERVAL (a timer)
    # What sends it: a client's publish, signal or presence change, an HTTP request, a timer.
    # Scenario steps and the plugin's methods use the same word.
    trigger: str
    phase: str | None  # "before" (can change or stop delivery), "after", or None
    completion: str  # the call a handler must make, for the "finished without" error
    verb: str | None = None  # request.verb for message kinds

    @property
    def is_before(self) -> bool:
        return self.phase == "before"

    @property
    def has_channels(self) -> bool:
        return self.family == MESSAGE


_MESSAGE_COMPLETION = "request.ok() or request.abort()"

KINDS: dict[str, EventKind] = {
    kind.name: kind
    for kind in (
        EventKind("before-publish", MESSAGE, "publish", "before", _MESSAGE_COMPLETION, "publish"),
        EventKind("after-publish", MESSAGE, "publish", "after", _MESSAGE_COMPLETION, "publish"),
        EventKind("before-signal", MESSAGE, "signal", "before", _MESSAGE_COMPLETION, "signal"),
        EventKind("after-signal", MESSAGE, "signal", "after", _MESSAGE_COMPLETION, "signal"),
        EventKind("after-presence", MESSAGE, "presence", "after", _MESSAGE_COMPLETION, "presence"),
        # A file message (its text and the uploaded file's id and name) is a publish.
        EventKind("before-publish-file", MESSAGE, FILE, "before", _MESSAGE_COMPLETION, "publish"),
        EventKind("after-publish-file", MESSAGE, FILE, "after", _MESSAGE_COMPLETION, "publish"),
        EventKind("on-request", REQUEST, "request", None, "response.send()"),
        EventKind("on-interval", INTERVAL, "interval", None, "event.ok() or event.abort()"),
    )
}
KIND_NAMES = tuple(KINDS)
TRIGGERS = tuple(dict.fromkeys(kind.trigger for kind in KINDS.values()))
PRESENCE_ACTIONS = ("join", "leave", "timeout", "state-change", "interval")
DEFAULT_PRESENCE_UUID = "pfunc-user"
# A fire runs the publish functions; it only differs in never reaching subscribers.
_BUS_TRIGGER = {"publish": "publish", "fire": "publish", "signal": "signal", FILE: FILE}
_REST_ROUTE = {"signal": "signal"}  # the REST path a verb arrives on (fire is a publish)


def kind_of(name: str) -> EventKind:
    """The row for `name`; a usage error listing the kinds when there is none."""
    found = KINDS.get(name)
    if found is None:
        raise PfuncUsageError(f"unknown event kind {name!r}; use one of: {', '.join(KINDS)}")
    return found


def kinds_triggered_by(trigger: str, phase: str | None = None) -> list[EventKind]:
    """The kinds a trigger reaches (a bus verb such as "fire" counts as its trigger)."""
    trigger = _BUS_TRIGGER.get(trigger, trigger)
    return [
        kind
        for kind in KINDS.values()
        if kind.trigger == trigger and (phase is None or kind.phase == phase)
    ]


def kind_for_trigger(
    trigger: str, event: str | None = None, function_event: str | None = None
) -> EventKind:
    """The kind a scenario step or plugin call of `trigger` runs: the `event` it names,
    else the function's own kind, else the trigger's first kind. A usage error when that
    kind is not one the trigger sends (a publish step cannot run an on-request handler)."""
    allowed = kinds_triggered_by(trigger)
    if not allowed:
        raise PfuncUsageError(f"unknown trigger {trigger!r}; use one of: {', '.join(TRIGGERS)}")
    name = event or function_event or allowed[0].name
    row = kind_of(name)
    if row not in allowed:
        article = "an" if row.name[0] in "aeiou" else "a"
        whose = f"{article} {row.name} {'event' if event else 'function'}"
        raise PfuncUsageError(
            f"a {trigger} cannot run {whose}; a {trigger} runs "
            f"{', '.join(kind.name for kind in allowed)} (use {row.trigger} for {row.name})"
        )
    return row


# --- events ------------------------------------------------------------------------------

DEFAULT_META = {"clientip": "127.0.0.1", "origin": "127.0.0.1", "useragent": "pfunc"}


@dataclass(frozen=True)
class Keyset:
    """The keys a request object reports (`pubkey`, `subkey`); subscribe_key scopes the KV store."""

    subscribe_key: str = "sub-c-local"
    publish_key: str = "pub-c-local"


@dataclass
class MessageEvent:
    kind: str
    message: Any
    channel: str = DEFAULT_CHANNEL
    params: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    verb: str = "publish"
    hop: int = 1  # 1 when a client published; +1 for each handler publish in a chain

    def to_sandbox(self, keyset: Keyset) -> dict[str, Any]:
        is_file = KINDS[self.kind].trigger == FILE
        route = "/v1/files/publish-file" if is_file else f"/{_REST_ROUTE.get(self.verb, 'publish')}"
        return {
            "kind": self.kind,
            "message": self.message,
            "channels": [self.channel],
            "verb": self.verb,
            "params": {"uuid": "pfunc-cli", **self.params},
            "meta": {**DEFAULT_META, **self.meta},
            "pubkey": keyset.publish_key,
            "subkey": keyset.subscribe_key,
            "version": "2.0",
            "uri": f"{route}/{keyset.publish_key}/{keyset.subscribe_key}/0/{self.channel}/0",
        }


@dataclass
class RequestEvent:
    method: str = "GET"
    path: str = "/"
    query: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""
    kind: str = "on-request"
    uri: str | None = None  # the full path requested (the dev server knows it)
    clientip: str | None = None

    def to_sandbox(self, keyset: Keyset) -> dict[str, Any]:
        path = self.path if self.path.startswith("/") else "/" + self.path
        headers = {name.lower(): value for name, value in self.headers.items()}
        meta = dict(DEFAULT_META)
        # The client's own user agent and address, as the headers show them.
        if "user-agent" in headers:
            meta["useragent"] = headers["user-agent"]
        if self.clientip:
            meta["clientip"] = self.clientip
        return {
            "kind": self.kind,
            "method": self.method.upper(),
            "path": path,
            "query": dict(self.query),
            "headers": headers,
            "body": self.body,
            "meta": meta,
            "uri": self.uri or f"/v1/blocks/sub-key/{keyset.subscribe_key}{path}",
        }


@dataclass
class IntervalEvent:
    kind: str = "on-interval"

    def to_sandbox(self, keyset: Keyset) -> dict[str, Any]:
        return {"kind": self.kind}


Event = MessageEvent | RequestEvent | IntervalEvent


def presence_message(
    action: str, uuid: str | None, occupancy: int, timestamp: int, state: Any = None
) -> dict[str, Any]:
    """The presence event an after-presence handler sees as request.message. An interval
    event names no one user: PubNub lists who joined (left, timed out) since the last."""
    message: dict[str, Any] = {"action": action}
    if action != "interval":
        message["uuid"] = uuid or DEFAULT_PRESENCE_UUID
    elif uuid:
        message["join"] = [uuid]
    message.update(occupancy=occupancy, timestamp=timestamp)
    if state is not None:
        message["state"] = state
    return message


# --- the one builder -----------------------------------------------------------------------

_MISSING: Any = object()


@dataclass
class EventSpec:
    """What a user described for one event; unset fields take the builder's defaults.
    Field names are the same in every front end: CLI flags (--message, --query...),
    the dev server trigger's JSON, scenario steps and the plugin's keyword arguments."""

    message: Any = _MISSING
    channel: str | None = None
    params: dict[str, Any] | None = None
    meta: dict[str, Any] | None = None
    method: str | None = None
    path: str | None = None
    query: dict[str, Any] | None = None
    headers: dict[str, Any] | None = None
    body: Any = None  # text; anything else is sent as its JSON
    json: Any = _MISSING  # a request body given as a value, sent as JSON
    action: str | None = None
    uuid: str | None = None
    occupancy: int | None = None
    state: dict[str, Any] | None = None

    def given(self) -> list[str]:
        """The names of the fields that were set."""
        return [name for name in _SPEC_FIELDS if getattr(self, name) not in (None, _MISSING)]

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], where: str = "the event") -> EventSpec:
        """A spec from JSON or TOML (trigger bodies, console commands, scenario steps).
        Unknown keys are refused, so `{"text": "hi"}` is not silently read as an empty
        event: the message goes under "message"."""
        if unknown := sorted(set(data).difference(_SPEC_FIELDS)):
            known = set(_SPEC_FIELDS)
            close = [m for n in unknown for m in difflib.get_close_matches(n, known, 1, 0.7)]
            text = json.dumps(dict(data), default=str)
            text = text if len(text) <= 60 else "it"
            bare = not close and known.isdisjoint(data)  # a bare message: {"text": "hi"}
            raise PfuncUsageError(
                f"{where}: unknown field{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}"
                f"{f' (did you mean {close[0]}?)' if close else ''}; an event has "
                f"{', '.join(sorted(known))}"
                + (f'. To send {text} as the message, write {{"message": ...}}' * bare)
            )
        return cls(**dict(data))


_SPEC_FIELDS = tuple(f.name for f in fields(EventSpec))  # once: fields() costs ~1.5 us a call
SpellField = Callable[[str], str]

_HTTP_FIELDS = ("method", "path", "query", "headers", "body", "json")
_MESSAGE_ONLY_FIELDS = ("message", "params", "meta")
_PRESENCE_FIELDS = ("action", "uuid", "occupancy", "state")


def build_event(
    kind: EventKind | str,
    spec: EventSpec,
    *,
    default_channel: str = DEFAULT_CHANNEL,
    now_ms: int = 0,
    hop: int = 1,
    verb: str | None = None,
    spell: SpellField = str,
    can_choose_kind: bool = False,
    published: bool = False,
) -> Event:
    """The event of `kind` that `spec` describes.

    `default_channel` is the function's (its first exact channel); `now_ms` stamps
    presence events; `verb` overrides the kind's (the bus says "fire"); `spell` names a
    field as the front end's user wrote it (the CLI passes "--" + name), so errors read
    in the user's own words; `can_choose_kind` is True where the user picks the kind
    (--event), so errors may suggest another; `published` says the message is what a
    client published (the bus), taken as it is: a file kind's is not made the text of a
    file message (an encrypted one is the SDK's ciphertext of the whole).
    """
    row = kind_of(kind) if isinstance(kind, str) else kind
    given = spec.given()

    def refuse(names: tuple[str, ...], hint: str) -> None:
        wrong = [name for name in names if name in given]
        if wrong:
            raise PfuncUsageError(
                f"{', '.join(map(spell, wrong))} {'does' if len(wrong) == 1 else 'do'} not "
                f"apply to {row.name} events; {hint}"
            )

    def other_kind(trigger: str) -> str:
        wanted = kinds_triggered_by(trigger)[0].name
        if can_choose_kind:
            return f"drop them or use {spell('event')} {wanted}"
        return f"they belong to {wanted} events; drop them"

    # A channel means nothing to a request or a timer; it is ignored there, as it always was.
    if row.family == REQUEST:
        refuse(
            _MESSAGE_ONLY_FIELDS + _PRESENCE_FIELDS,
            f"send data with {spell('body')}, {spell('query')} or {spell('headers')}",
        )
        return _request_event(spec, spell)
    refuse(_HTTP_FIELDS, other_kind("request"))
    if row.family == INTERVAL:
        refuse(_MESSAGE_ONLY_FIELDS + _PRESENCE_FIELDS, "an interval handler receives no message")
        return IntervalEvent()
    if row.trigger != "presence":
        refuse(_PRESENCE_FIELDS, other_kind("presence"))
    channel = spec.channel if spec.channel is not None else default_channel
    if not isinstance(channel, str) or not channel or not is_unicode(channel):
        raise PfuncUsageError(f"{spell('channel')} must be a channel name, got {channel!r}")
    if spec.message is not _MISSING and row.trigger == FILE and not published:
        message = as_file_message(spec.message)
    elif spec.message is not _MISSING:
        message = spec.message
    elif row.trigger == "presence":
        message = _presence(spec, now_ms, spell)
    elif row.trigger == FILE:
        message = file_message(None, DEFAULT_FILE)
    else:
        message = {}
    params = _object(spec.params, "params", spell)
    if row.trigger == "presence" and isinstance(message, dict) and "uuid" in message:
        params = {"uuid": message["uuid"], **params}  # whose change it is, not "pfunc-cli"
    return MessageEvent(
        row.name,
        message,
        channel,
        params,
        _object(spec.meta, "meta", spell),
        verb or row.verb or "publish",
        hop,
    )


def is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate (or a byte argv could not decode)
        return False
    return True


def _object(value: Any, name: str, spell: SpellField) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        shown = json.dumps(value, default=str)[:60]
        raise PfuncUsageError(
            f'{spell(name)} must be a JSON object, e.g. {{"uuid":"u1"}}; got {shown}'
        )
    return dict(value)


def _strings(value: Any, name: str, spell: SpellField) -> dict[str, str]:
    """Values as text, as HTTP carries them (true as JSON writes it, a TOML date as
    written); a list or table is refused, not written as Python."""
    texts = {}
    for key, item in _object(value, name, spell).items():
        if isinstance(item, bool):
            text = json.dumps(item)
        elif isinstance(item, str | int | float):
            text = str(item)
        elif hasattr(item, "isoformat"):
            text = item.isoformat()
        else:
            shown = json.dumps(item, default=str)[:40]
            raise PfuncUsageError(f"{spell(name)}.{key} must be text or a number, got {shown}")
        texts[str(key)] = text
    return texts


def _request_event(spec: EventSpec, spell: SpellField) -> RequestEvent:
    if spec.json is not _MISSING:
        if spec.body is not None:
            raise PfuncUsageError(f"give {spell('body')} or {spell('json')}, not both")
        body = compact(spec.json)  # as a client's JSON.stringify writes it
    elif spec.body is None:
        body = ""
    else:
        body = spec.body if isinstance(spec.body, str) else compact(spec.body)
    headers = joined_headers(_strings(spec.headers, "headers", spell).items())
    # A body given as JSON is sent as a client sends JSON: saying so (a handler may check).
    given_json = spec.json is not _MISSING or not isinstance(spec.body, str | None)
    if given_json and "content-type" not in headers:
        headers["content-type"] = "application/json"
    # A body, even an empty one, means POST unless a method is given.
    given_body = spec.body is not None or spec.json is not _MISSING
    method = spec.method if spec.method is not None else ("POST" if given_body else "GET")
    if not isinstance(method, str) or not method.replace("-", "").isalnum():
        raise PfuncUsageError(f"{spell('method')} must be an HTTP method, got {method!r}")
    path = spec.path or "/"
    if not isinstance(path, str):
        raise PfuncUsageError(f"{spell('path')} must be text, got {path!r}")
    # A path written with its query string ("/items?page=2") is split as a URL is: the
    # handler's path never holds one. Names given as `query` win over the path's.
    path, _, query_string = path.partition("?")
    query = first_values(parse_qsl(query_string, keep_blank_values=True))
    query.update(_strings(spec.query, "query", spell))
    return RequestEvent(
        method=method.upper(), path=path or "/", query=query, headers=headers, body=body
    )


def _presence(spec: EventSpec, now_ms: int, spell: SpellField) -> dict[str, Any]:
    action = spec.action or "join"
    if action not in PRESENCE_ACTIONS:
        raise PfuncUsageError(
            f"{spell('action')} {action!r}: use one of {', '.join(PRESENCE_ACTIONS)}"
        )
    occupancy = 1 if spec.occupancy is None else spec.occupancy
    if not isinstance(occupancy, int) or isinstance(occupancy, bool) or occupancy < 0:
        raise PfuncUsageError(f"{spell('occupancy')} must be a whole number >= 0")
    uuid = spec.uuid
    if uuid is not None and not isinstance(uuid, str):
        raise PfuncUsageError(f"{spell('uuid')} must be text, got {uuid!r}")
    state = None if spec.state is None else _object(spec.state, "state", spell)
    return presence_message(action, uuid, occupancy, now_ms // 1000, state)
