"""What subscribers of the dev server see: recent deliveries in timetoken order, the
long-polls waiting for new ones, and each delivery as a subscribe v2 envelope."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
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
    # Characters counted against the buffer's budget (a log stream line's: up to 1 MiB
    # each, where a publish is 32 KiB at most and counted by the buffer's length alone).
    size: int = 0
    at: float = field(default_factory=time.monotonic)  # when it was added (catch-up's age)
    # The publisher's own timetoken for it (ptto): the one the envelope shows; `timetoken`
    # (when it was published) keeps subscribers' cursors in order.
    given_timetoken: int | None = None
    gone: bool = False  # a sized one let go for the budget: kept in order, read by nobody


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


# What the buffer's sized deliveries (log stream lines) may hold in all: 5,000 console
# lines of up to 1 MiB each had kept ~1 MB per request, up to gigabytes, watched or not.
SIZED_BUDGET = 32 << 20

# PubNub's subscribe queue (its support articles): 100 messages a channel, 5 minutes.
CATCH_UP_PER_CHANNEL = 100
CATCH_UP_SECONDS = 300.0

# A waiting long-poll whose client has gone is noticed within this many seconds (its
# socket closed: a page reloaded mid-poll), rather than at its timeout (280 s).
GONE_CHECK_EVERY = 10.0


class _Waiter:
    """One long-poll waiting for deliveries, and the subscriptions it waits on."""

    __slots__ = ("grouped", "keys", "patterns", "woken")

    def __init__(self, patterns: list[tuple[str, str]], grouped: bool) -> None:
        self.patterns = patterns
        # What wakes it: a channel's name, or (for `a.*`) its prefix and whether it is the
        # presence of the channels under it (`a.*-pnpres`).
        self.keys = {_key(pattern) for pattern, _ in patterns}
        self.grouped = grouped  # a channel group's: told when any group changes
        self.woken: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def wake(self) -> None:
        if not self.woken.done():
            self.woken.set_result(None)


def _key(pattern: str) -> str | tuple[str, bool]:
    presence = pattern.endswith(PRESENCE)
    base = pattern[: -len(PRESENCE)] if presence else pattern
    return (base[:-1], presence) if base.endswith(".*") else pattern


def _keys_of(channel: str) -> list[str | tuple[str, bool]]:
    """The waiter keys a delivery on `channel` wakes: its name, and each `a.` prefix of
    it (with whether it is a presence channel), for the wildcards above it."""
    presence = channel.endswith(PRESENCE)
    base = channel[: -len(PRESENCE)] if presence else channel
    keys: list[str | tuple[str, bool]] = [channel]
    at = base.find(".")
    while at != -1:
        keys.append((base[: at + 1], presence))
        at = base.find(".", at + 1)
    return keys


class MessageLog:
    """Recent deliveries, oldest first, and the subscribers waiting for new ones.

    A waiting long-poll is woken only by a delivery on a channel it subscribes to (by
    name, or by prefix for a wildcard), or for a channel group's poll by a change of
    the groups, and then reads only the deliveries
    that arrived since it last read: waking every waiter to read the whole buffer cost
    each publish waiters x buffer, and 200 polls left open by reloaded pages brought
    publishing from 2,400/s to 10/s."""

    def __init__(self, subscribe_key: str, keep: int = 5000) -> None:
        self.subscribe_key = subscribe_key
        self._entries: deque[Delivery] = deque(maxlen=keep)
        self._sized = 0  # the kept deliveries' sizes: at most SIZED_BUDGET
        self._sized_entries: deque[Delivery] = deque()  # those with a size, oldest first
        self._appended = 0  # deliveries ever added: what a waiter has read up to
        self._waiting: dict[str | tuple[str, bool], set[_Waiter]] = {}
        self._grouped: set[_Waiter] = set()
        self._closed = False

    def close(self) -> None:
        """The server is stopping: answer every waiting long-poll now, and new ones at once."""
        self._closed = True
        # A poll of an empty channel group waits on no channel: it is among the grouped.
        for waiter in {*itertools.chain(*self._waiting.values()), *self._grouped}:
            waiter.wake()

    def groups_changed(self) -> None:
        """A channel group changed: its subscribers' polls resolve their groups again."""
        for waiter in self._grouped:
            waiter.wake()

    def add(self, delivery: Delivery) -> None:
        entries, sized = self._entries, self._sized_entries
        if len(entries) == entries.maxlen and sized and sized[0] is entries[0]:
            self._let_go(sized.popleft())  # the oldest goes as this comes (if still counted)
        entries.append(delivery)
        if delivery.size:
            sized.append(delivery)
            self._sized += delivery.size
            while self._sized > SIZED_BUDGET and len(sized) > 1:  # the oldest big log lines
                self._let_go(sized.popleft())  # go, never a publish (counted by length)
        self._appended += 1
        for key in _keys_of(delivery.channel):
            for waiter in self._waiting.get(key, ()):
                waiter.wake()

    def _let_go(self, delivery: Delivery) -> None:
        if not delivery.gone:
            delivery.gone, delivery.payload = True, None  # (its text freed now)
            self._sized -= delivery.size

    def after(
        self, patterns: list[tuple[str, str]], timetoken: int, accept: Predicate | None = None
    ) -> list[tuple[Delivery, str]]:
        """Deliveries newer than `timetoken` on channels the (pattern, subscription) pairs
        match, with the subscription that matched (a channel group's name, a wildcard);
        messages and signals only if `accept` (a subscriber's filter) takes them."""
        return self._matching(self._catch_up(timetoken), patterns, timetoken, accept)

    def _catch_up(self, timetoken: int) -> list[Delivery]:
        """What a subscriber asking from `timetoken` may still get: PubNub's queue "holds
        onto messages for up to 5 minutes and is limited to 100 messages" a channel, the
        older ones "overflowing the queue and getting discarded"; a reconnect that counts
        on more loses them in production, so it does here."""
        oldest = time.monotonic() - CATCH_UP_SECONDS
        counts: dict[str, int] = {}
        kept = []
        for delivery in reversed(self._entries):
            if delivery.at < oldest:
                break  # (kept in the order they came)
            if delivery.timetoken <= timetoken:
                continue
            seen = counts[delivery.channel] = counts.get(delivery.channel, 0) + 1
            if seen <= CATCH_UP_PER_CHANNEL:
                kept.append(delivery)
        kept.reverse()
        return kept

    @staticmethod
    def _matching(
        deliveries: Iterable[Delivery],
        patterns: list[tuple[str, str]],
        timetoken: int,
        accept: Predicate | None,
    ) -> list[tuple[Delivery, str]]:
        found = []
        for delivery in deliveries:
            if delivery.timetoken <= timetoken or delivery.gone:
                continue
            if (
                accept is not None
                and not delivery.presence
                and not accept((delivery.meta, delivery.publisher, delivery.payload))
            ):
                continue
            for pattern, subscription in patterns:
                if subscription_matches(pattern, delivery.channel):
                    found.append((delivery, subscription))
                    break
        return found

    def _since(self, appended: int) -> list[Delivery]:
        """The deliveries added since the count was `appended` (those still kept)."""
        count = min(self._appended - appended, len(self._entries))
        return list(itertools.islice(reversed(self._entries), count))[::-1]

    async def wait(
        self,
        resolve: Callable[[], Awaitable[list[tuple[str, str]]]],
        timetoken: int,
        timeout: float,
        accept: Predicate | None = None,
        gone: Callable[[], bool] | None = None,
        dynamic: bool = False,
    ) -> list[tuple[Delivery, str]]:
        """Wait for deliveries; `resolve` gives the (pattern, subscription) pairs, asked
        again each time when `dynamic` (a channel group's change reaches a waiting
        subscriber); `gone` says the client has left, which ends the wait."""
        deadline = time.monotonic() + timeout
        patterns = await resolve()
        read_up_to = self._appended  # the scan below is synchronous: nothing slips in
        found = self.after(patterns, timetoken, accept)
        check_gone_at = time.monotonic() + GONE_CHECK_EVERY
        while not found and not self._closed:
            now = time.monotonic()
            if now >= deadline:
                return []
            if now >= check_gone_at:  # however often it is woken, or not at all
                if gone is not None and gone():
                    return []
                check_gone_at = now + GONE_CHECK_EVERY
            waiter = self._register(patterns, dynamic)
            try:
                await asyncio.wait_for(waiter.woken, min(deadline, check_gone_at) - now)
            except TimeoutError:
                pass  # what arrived as it timed out is read below all the same
            finally:
                self._unregister(waiter)
            if dynamic:
                fresh = await resolve()
                if fresh != patterns:  # read all again: a group gained a channel
                    patterns, read_up_to = fresh, self._appended
                    found = self.after(patterns, timetoken, accept)
                    continue
            arrived, read_up_to = self._since(read_up_to), self._appended
            found = self._matching(arrived, patterns, timetoken, accept)
        return found

    def _register(self, patterns: list[tuple[str, str]], grouped: bool) -> _Waiter:
        waiter = _Waiter(patterns, grouped)
        for key in waiter.keys:
            self._waiting.setdefault(key, set()).add(waiter)
        if grouped:
            self._grouped.add(waiter)
        return waiter

    def _unregister(self, waiter: _Waiter) -> None:
        self._grouped.discard(waiter)
        for key in waiter.keys:
            waiters = self._waiting.get(key)
            if waiters is not None:
                waiters.discard(waiter)
                if not waiters:
                    del self._waiting[key]

    def envelope(self, delivery: Delivery, match: str) -> dict[str, Any]:
        """One message as the subscribe v2 API carries it."""
        data: dict[str, Any] = {"a": "1", "f": 0}
        if delivery.publisher:
            data["i"] = delivery.publisher
        if not delivery.presence:
            data["s"] = delivery.sequence
        data.update(
            p={"t": str(delivery.given_timetoken or delivery.timetoken), "r": 1},
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
