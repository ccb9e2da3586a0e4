"""What subscribers of the dev server see: recent deliveries in timetoken order, the
long-polls waiting for new ones, and each delivery as a subscribe v2 envelope."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pfunc.channels import channel_matches
from pfunc.events import FILE
from pfunc.history import FILE_MESSAGE
from pfunc.server.filters import Predicate

# The "e" field of a subscribe envelope, by what was delivered. A plain message and a
# presence event carry none: the JavaScript SDK reads e = 0 as a file event.
MESSAGE_TYPES: dict[str, int | None] = {"publish": None, "signal": 1, FILE: FILE_MESSAGE}


@dataclass
class Delivery:
    timetoken: int
    channel: str
    payload: Any
    kind: int | None  # the envelope's "e" (see MESSAGE_TYPES); None: a message or presence
    publisher: str | None = None
    meta: dict[str, Any] | None = None
    sequence: int = 1  # the publisher's seqn (PubNub answers 1 when it sent none)
    custom_type: str | None = None  # custom_message_type of the publish ("cmt")
    presence: bool = False  # a presence event: PubNub names its subscription in "b"


PRESENCE = "-pnpres"


def subscription_matches(pattern: str, channel: str) -> bool:
    """Does a subscription receive what was delivered on `channel`? Presence channels
    follow their base: `chat.*-pnpres` (what the SDKs subscribe for a wildcard with
    presence) gets `chat.a-pnpres`; `chat.*` gets `chat.a` but not its presence."""
    if pattern.endswith(PRESENCE) and channel.endswith(PRESENCE):
        return channel_matches(pattern[: -len(PRESENCE)], channel[: -len(PRESENCE)])
    if channel.endswith(PRESENCE) and "*" in pattern:
        return False
    return channel_matches(pattern, channel)


class MessageLog:
    """Recent deliveries, oldest first, and the subscribers waiting for new ones."""

    def __init__(self, subscribe_key: str, keep: int = 5000) -> None:
        self.subscribe_key = subscribe_key
        self._entries: deque[Delivery] = deque(maxlen=keep)
        self._arrived = asyncio.Event()
        self._closed = False

    def close(self) -> None:
        """The server is stopping: answer every waiting long-poll now, and new ones at once."""
        self._closed = True
        self._arrived.set()

    def add(self, delivery: Delivery) -> None:
        self._entries.append(delivery)
        self._arrived.set()
        self._arrived = asyncio.Event()  # waiters of the next message wait on a fresh one

    def after(
        self, patterns: list[tuple[str, str]], timetoken: int, accept: Predicate | None = None
    ) -> list[tuple[Delivery, str]]:
        """Deliveries newer than `timetoken` on channels the (pattern, subscription) pairs
        match, with the subscription that matched (a channel group's name, a wildcard);
        messages and signals only if `accept` (a subscriber's filter) takes their meta."""
        found = []
        for delivery in self._entries:
            if delivery.timetoken <= timetoken:
                continue
            if (
                accept is not None
                and not delivery.presence
                and not accept((delivery.meta, delivery.publisher))
            ):
                continue
            for pattern, subscription in patterns:
                if subscription_matches(pattern, delivery.channel):
                    found.append((delivery, subscription))
                    break
        return found

    async def wait(
        self,
        resolve: Callable[[], Awaitable[list[tuple[str, str]]]],
        timetoken: int,
        timeout: float,
        accept: Predicate | None = None,
    ) -> list[tuple[Delivery, str]]:
        """Wait for deliveries; `resolve` gives the (pattern, subscription) pairs, asked
        again each time, so a channel group's change reaches a waiting subscriber."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.after(await resolve(), timetoken, accept)
            remaining = deadline - time.monotonic()
            if found or remaining <= 0 or self._closed:
                return found
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except TimeoutError:
                return []

    def envelope(self, delivery: Delivery, match: str) -> dict[str, Any]:
        """One message as the subscribe v2 API carries it."""
        data: dict[str, Any] = {"a": "1", "f": 0}
        if delivery.publisher:
            data["i"] = delivery.publisher
        if not delivery.presence:
            data["s"] = delivery.sequence
        data.update(
            p={"t": str(delivery.timetoken), "r": 1},
            k=self.subscribe_key,
            c=delivery.channel,
            d=delivery.payload,
        )
        if delivery.kind is not None:
            data["e"] = delivery.kind
        if match != delivery.channel or delivery.presence:
            data["b"] = match
        if delivery.meta:
            data["u"] = delivery.meta
        if delivery.custom_type:
            data["cmt"] = delivery.custom_type
        return data
