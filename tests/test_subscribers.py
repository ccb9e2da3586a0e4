"""The dev server's long-poll waiting and presence bookkeeping, on their own: a poll wakes
for its own channels and reads only what is new, a poll whose client left ends, and
presence keeps nothing for channels nobody is on (a soak of pfunc dev found each)."""

from __future__ import annotations

import asyncio

import pytest

from pfunc.presence import Presence
from pfunc.server import subscribers
from pfunc.server.subscribers import Delivery, MessageLog


def _message(log: MessageLog, timetoken: int, channel: str, text: str) -> None:
    log.add(Delivery(timetoken, channel, {"text": text}, None))


def test_a_waiting_poll_gets_what_arrives_on_its_channels_once_among_many_others():
    async def scenario() -> list[list[tuple[str, str, str]]]:
        log = MessageLog("sub-c")
        for n in range(5000):  # a full buffer of older deliveries
            _message(log, n + 1, "busy", f"old {n}")

        async def fixed() -> list[tuple[str, str]]:
            return [("quiet", "quiet"), ("rooms.*", "rooms.*")]

        polls = [asyncio.create_task(log.wait(fixed, 5000, 30)) for _ in range(3)]
        await asyncio.sleep(0)
        tt = 5000
        for n in range(300):
            tt += 1
            _message(log, tt, "busy", f"new {n}")
        _message(log, tt + 1, "quiet", "hello")
        _message(log, tt + 2, "rooms.a", "room")  # arrives before the polls read: both
        found = await asyncio.gather(*polls)
        return [[(d.channel, m, d.payload["text"]) for d, m in one] for one in found]

    for one in asyncio.run(scenario()):
        assert one == [("quiet", "quiet", "hello"), ("rooms.a", "rooms.*", "room")]


def test_a_filtered_out_delivery_keeps_the_poll_waiting_for_the_next():
    async def scenario() -> list[str]:
        log = MessageLog("sub-c")

        async def fixed() -> list[tuple[str, str]]:
            return [("c", "c")]

        def only_urgent(seen: tuple) -> bool:
            meta, _publisher, _payload = seen
            return bool(meta and meta.get("urgent"))

        poll = asyncio.create_task(log.wait(fixed, 0, 30, only_urgent))
        await asyncio.sleep(0)
        _message(log, 1, "c", "ignored")
        await asyncio.sleep(0)
        log.add(Delivery(2, "c", {"text": "urgent"}, None, meta={"urgent": True}))
        return [d.payload["text"] for d, _ in await poll]

    assert asyncio.run(scenario()) == ["urgent"]


def test_a_group_poll_gets_a_channel_the_group_gains_while_it_waits():
    async def scenario() -> list[str]:
        log = MessageLog("sub-c")
        members = ["a"]

        async def group() -> list[tuple[str, str]]:
            return [(member, "g") for member in members]

        poll = asyncio.create_task(log.wait(group, 0, 30, dynamic=True))
        await asyncio.sleep(0)
        members.append("b")
        log.groups_changed()  # as ChannelGroups tells the dev server
        _message(log, 1, "b", "to the new member")
        return [d.channel for d, _ in await poll]

    assert asyncio.run(scenario()) == ["b"]


def test_a_poll_whose_client_left_ends_long_before_its_timeout(monkeypatch):
    """A page reloaded mid-poll closes its socket; its poll used to wait the whole
    subscribe timeout (280 s), each one costing every publish."""
    monkeypatch.setattr(subscribers, "GONE_CHECK_EVERY", 0.01)

    async def scenario() -> list:
        log = MessageLog("sub-c")

        async def fixed() -> list[tuple[str, str]]:
            return [("c", "c")]

        # Far past the test's own bound: only noticing the client ends it in time.
        return await asyncio.wait_for(log.wait(fixed, 0, 3600, gone=lambda: True), 30)

    assert asyncio.run(scenario()) == []


@pytest.mark.parametrize("how", ["leave", "expire"])
def test_presence_keeps_nothing_for_channels_nobody_is_on(how):
    """Every second the server walks the channels presence knows: 100,000 channels each
    heartbeated once raised its idle CPU to 12% and its memory by 57 MB, for good."""
    presence = Presence()
    for n in range(1000):
        presence.beat(f"inbox.{n}", "u", -1 if how == "expire" else 60)  # -1: run out
        presence.set_state(f"inbox.{n}", "u", {"mood": "ok"})
    assert len(presence.occupied()) == 1000
    if how == "leave":
        for n in range(1000):
            assert presence.leave(f"inbox.{n}", "u")
    else:
        assert len(list(presence.expired())) == 1000
    assert presence.occupied() == [] and presence.intervals_due(20, 10.0) == []
    # What the server walks every second is as empty as what it reports.
    assert presence._expires == {} and presence._state == {} and presence._announced == {}


def test_users_timing_out_together_leave_one_at_a_time():
    """The timeout event made for each reads the occupancy of its own moment (PubNub:
    "the total number of subscribers on the channel when the event occurred"): three
    users whose heartbeats ran out in the same second are 2, 1 and 0 left, not 0, 0, 0,
    and the first of them is still above an announce_max of 2 (interval mode)."""
    presence = Presence()
    for uuid in ("a", "b", "c"):
        presence.beat("lobby", uuid, -1)  # -1: already run out
    left = [presence.occupancy(channel) for channel, _ in presence.expired()]
    assert left == [2, 1, 0]


@pytest.mark.parametrize(
    ("subscription", "traffic"),
    [("rooms.*", "other"), ("c", "c")],  # a wildcard woken by all; a filter refusing all
)
def test_a_poll_whose_client_left_ends_even_while_deliveries_keep_waking_it(
    monkeypatch, subscription, traffic
):
    monkeypatch.setattr(subscribers, "GONE_CHECK_EVERY", 0.05)

    async def scenario() -> list:
        log = MessageLog("sub-c")

        async def fixed() -> list[tuple[str, str]]:
            return [(subscription, subscription)]

        def nothing(seen: tuple) -> bool:
            return False

        poll = asyncio.create_task(log.wait(fixed, 0, 3600, nothing, gone=lambda: True))
        tt = 0
        while not poll.done():  # a delivery every 10 ms, quicker than the check
            tt += 1
            _message(log, tt, traffic, "noise")
            await asyncio.sleep(0.01)
            if tt > 3000:  # 30 s: it never ended
                poll.cancel()
                return ["never ended"]
        return await poll

    assert asyncio.run(scenario()) == []


def test_a_delivery_arriving_as_the_wait_times_out_is_still_read(monkeypatch):
    """A wait that timed out (to check its client) read nothing that arrived meanwhile:
    a message published in that instant waited for the poll's whole timeout."""

    async def scenario() -> list[str]:
        log = MessageLog("sub-c")

        async def fixed() -> list[tuple[str, str]]:
            return [("c", "c")]

        poll = asyncio.create_task(log.wait(fixed, 0, 3600, gone=lambda: False))
        for _ in range(5):
            await asyncio.sleep(0)
        _message(log, 1, "c", "hello")
        return [d.payload["text"] for d, _ in await asyncio.wait_for(poll, 30)]

    monkeypatch.setattr(subscribers, "GONE_CHECK_EVERY", 0.0)  # a timeout every turn
    assert asyncio.run(scenario()) == ["hello"]


def test_a_crowded_channel_emptied_and_filled_again_keeps_its_interval(monkeypatch):
    """Forgetting an emptied channel must not forget when it was last announced: filled
    again within its interval, it waits the interval out."""
    import pfunc.presence as presence_module

    clock = [100.0]

    class FakeTime:
        @staticmethod
        def monotonic() -> float:
            return clock[0]

    monkeypatch.setattr(presence_module, "time", FakeTime)
    presence = Presence()

    def crowd() -> None:
        for user in ("a", "b", "c"):
            presence.beat("hall", user, 60)

    crowd()
    assert [channel for channel, _ in presence.intervals_due(2, 10.0)] == ["hall"]
    for user in ("a", "b", "c"):
        presence.leave("hall", user)
    clock[0] += 1
    presence.intervals_due(2, 10.0)  # the emptied channel's turn passes
    crowd()
    clock[0] += 1
    assert presence.intervals_due(2, 10.0) == []  # 2 s after the last: not yet
    clock[0] += 9
    assert [channel for channel, _ in presence.intervals_due(2, 10.0)] == ["hall"]


def test_big_log_stream_lines_are_kept_within_a_budget_not_by_count_alone():
    """A function logging 1 MB a request kept ~1 MB a request in the delivery buffer
    (5,000 entries kept, watched or not): gigabytes under load. Sized deliveries (the log
    stream's lines) now give way, oldest first, past SIZED_BUDGET."""
    buffer = MessageLog("sub-c-x", keep=300)
    line = 1 << 20
    for n in range(1, 51):  # publishes: counted by the buffer's length, never let go for size
        buffer.add(Delivery(n, "chat", {"text": n}, None))
    for n in range(51, 251):
        buffer.add(Delivery(n, "blocks-output-f", {"message": "..."}, None, size=line))
    logs = buffer.after([("blocks-output-f", "blocks-output-f")], 0)
    assert len(logs) * line <= subscribers.SIZED_BUDGET
    assert [d.timetoken for d, _ in logs][-2:] == [249, 250]  # the newest stay
    assert [d.payload["text"] for d, _ in buffer.after([("chat", "chat")], 0)] == list(range(1, 51))
    for n in range(251, 600):  # past the buffer's length: each goes in turn, as counted
        buffer.add(Delivery(n, "blocks-output-f", {"message": "..."}, None, size=line))
    assert buffer._sized <= subscribers.SIZED_BUDGET and len(buffer._sized_entries) <= 32


def test_catching_up_gets_what_pubnubs_queue_keeps_100_a_channel_for_5_minutes():
    """PubNub's subscribe queue "holds onto messages for up to 5 minutes and is limited to
    100 messages": a subscriber catching up from an old timetoken got all 5,000 kept,
    of any age, so a reconnect that lost messages in production lost none here."""
    import time

    log = MessageLog("sub-c-x")
    stale = time.monotonic() - subscribers.CATCH_UP_SECONDS - 1
    log.add(Delivery(1, "b", "old", None, at=stale))
    for n in range(2, 152):
        log.add(Delivery(n, "a", n, None))
    log.add(Delivery(152, "b", "new", None))
    caught_up = log.after([("a", "a"), ("b", "b")], 0)
    by_channel = {
        channel: [d.payload for d, _ in caught_up if d.channel == channel] for channel in "ab"
    }
    assert by_channel == {"a": list(range(52, 152)), "b": ["new"]}
    assert [d.payload for d, _ in log.after([("a", "a")], 149)] == [150, 151]  # up to date
