"""What the `pubnub` module of a function may read and change besides publishing: the
project's message history and actions, presence, channel groups, push registrations,
and a way to tell subscribers. The
engine grants one to every executor; the dev server's endpoints use the same pieces."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pfunc.channel_groups import ChannelGroups
from pfunc.history import MessageHistory
from pfunc.presence import Presence
from pfunc.push import PushRegistrations

# Something for subscribers that is not a publish: (channel, payload, envelope "e",
# publisher). The dev server listens; elsewhere there are no subscribers to tell.
Announcement = tuple[str, Any, int | None, str | None]


@dataclass
class PubNubData:
    history: MessageHistory
    presence: Presence
    announce: Callable[[Announcement], None]
    groups: ChannelGroups | None = None
    push: PushRegistrations | None = None
