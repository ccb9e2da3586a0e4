"""What the `pubnub` module of a function may read and change besides publishing: the
project's message history and actions, presence, channel groups, push registrations,
App Context, Access Manager, shared files, and a way to tell subscribers. The engine
grants one to every executor; the dev server's endpoints use the same pieces."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pfunc.access import AccessManager
from pfunc.announcement import Announcement
from pfunc.app_context import AppContext
from pfunc.channel_groups import ChannelGroups
from pfunc.files import Files
from pfunc.history import MessageHistory
from pfunc.presence import Presence
from pfunc.push import PushRegistrations


@dataclass
class PubNubData:
    history: MessageHistory
    presence: Presence
    announce: Callable[[Announcement], None]
    groups: ChannelGroups | None = None
    push: PushRegistrations | None = None
    objects: AppContext | None = None
    access: AccessManager | None = None
    files: Files | None = None
