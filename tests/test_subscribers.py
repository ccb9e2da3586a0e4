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
            meta, _ = seen
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
        assert len(presence.expired()) == 1000
    assert presence.occupied() == [] and presence.intervals_due(20, 10.0) == []
    # What the server walks every second is as empty as what it reports.
    assert presence._expires == {} and presence._state == {} and presence._announced == {}
