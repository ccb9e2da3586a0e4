"""A project as pfunc.toml describes it: keyset, limits, KV path, vault secrets, mocks and
functions (project_file.py reads it from the file)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pfunc.channels import PRESENCE_SUFFIX, default_channel
from pfunc.events import KINDS, Event, Keyset, RequestEvent
from pfunc.jsonio import well_formed

PROJECT_FILE = "pfunc.toml"
DEFAULT_KV = ".pfunc/kv.sqlite3"


@dataclass
class FunctionConfig:
    name: str
    file: Path
    event: str
    channels: list[str] = field(default_factory=list)
    path: str | None = None
    interval: float | None = None

    @property
    def default_channel(self) -> str:
        """Where an event for this function goes when no channel is given. `lobby-pnpres`
        binds an after-presence function as `lobby` does, and its events are lobby's, as
        pfunc dev gives them (request.channels ["lobby"] however it is bound)."""
        channel = default_channel(self.channels)
        if KINDS[self.event].trigger == "presence":
            return channel.removesuffix(PRESENCE_SUFFIX)
        return channel

    def place_request(self, event: Event, subscribe_key: str) -> None:
        """Give a request event for this on-request function the `uri` pfunc dev gives
        it: the function's own path, then the request's (`pfunc run`, scenarios). A path
        with a `*` names no one URL: the event keeps its own."""
        route = (self.path or "").removesuffix("/*").strip("/")  # (session/* serves session/x)
        if isinstance(event, RequestEvent) and event.uri is None and route and "*" not in route:
            rest = "" if event.path == "/" else event.path
            event.uri = f"/v1/blocks/sub-key/{subscribe_key}/{route}{rest}"


@dataclass
class MockRule:
    """An answer for xhr.fetch requests whose URL matches `url` (`*` wildcards)."""

    url: str
    method: str | None = None  # None: any method
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""

    def response(self, url: str) -> dict[str, Any]:
        return {
            "status": self.status,
            "headers": dict(self.headers),
            "body": self.body,
            "url": url,
        }


@dataclass
class Project:
    root: Path
    config_file: Path | None
    name: str = "pfunc-project"
    keyset: Keyset = field(default_factory=Keyset)
    limits: str = "classic"
    limit_overrides: dict[str, Any] = field(default_factory=dict)
    kv_path: Path = field(default_factory=lambda: Path(DEFAULT_KV))
    vault: dict[str, str] = field(default_factory=dict)
    # The keyset's secret key: with one, `pfunc dev` enforces Access Manager.
    secret_key: str | None = field(default=None, repr=False)
    functions: list[FunctionConfig] = field(default_factory=list)
    mocks: list[MockRule] = field(default_factory=list)
    # PubNub's keyset presence settings: above `announce_max` occupants a channel's joins
    # and leaves are announced together every `interval` seconds.
    presence_announce_max: int = 20
    presence_interval: float = 10.0

    def function(self, name: str) -> FunctionConfig | None:
        return next((function for function in self.functions if function.name == name), None)


def relative_to_cwd(path: Path) -> Path:
    """The path relative to the current folder when it is below it, for reports."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return path


def display_path(file: Path, project: Project | None) -> str:
    """A handler's path as pfunc.toml names it: relative to the project root. A name whose
    bytes are not UTF-8 (a Latin-1 café.js) shows U+FFFD for them: the path is shown in
    reports and handed to the engine, which takes only text."""
    shown = str(file)
    if project is not None:
        with contextlib.suppress(ValueError):
            shown = str(file.resolve().relative_to(project.root.resolve()))
    return well_formed(shown)
