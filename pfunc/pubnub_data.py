"""What the `pubnub` module of a function may read and change besides publishing: the
project's message history and actions, presence, channel groups, push registrations,
App Context, Access Manager, shared files, and a way to tell subscribers. The engine
grants one to every executor; the dev server's endpoints use the same pieces.

App Context, Access Manager and files are built on first use: most runs of `pfunc run`
never touch them, and their imports (cbor2, the filter language) would cost every cold
start."""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING, Any

from pfunc.announcement import Announcement
from pfunc.channel_groups import ChannelGroups
from pfunc.file_urls import DEFAULT_FILES_ORIGIN, files_base_url
from pfunc.history import MessageHistory
from pfunc.presence import Presence
from pfunc.push import PushRegistrations

if TYPE_CHECKING:
    from pfunc.access import AccessManager
    from pfunc.app_context import AppContext
    from pfunc.files import Files


class PubNubData:
    def __init__(
        self,
        history: MessageHistory,
        presence: Presence,
        announce: Callable[[Announcement], None],
        groups: ChannelGroups | None = None,
        push: PushRegistrations | None = None,
        build: dict[str, Callable[[], Any]] | None = None,
    ) -> None:
        self.history = history
        self.presence = presence
        self.announce = announce
        self.groups = groups
        self.push = push
        self._build = build or {}  # "objects", "access", "files": how to make each

    def _made(self, name: str) -> Any:
        make = self._build.get(name)
        return make() if make is not None else None

    @cached_property
    def objects(self) -> AppContext | None:
        return self._made("objects")

    @cached_property
    def access(self) -> AccessManager | None:
        return self._made("access")

    @cached_property
    def files(self) -> Files | None:
        return self._made("files")

    def files_base(self, keyset: str) -> str:
        """The file URL base for functions, without building the files API for it."""
        made = self.__dict__.get("files")  # built already (the dev server sets its origin)
        return made.base_url() if made is not None else files_base_url(DEFAULT_FILES_ORIGIN, keyset)
