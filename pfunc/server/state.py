"""What every part of the dev server shares: the engine, the log, subscribers and
presence, and the background tasks it started."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from pfunc.announcement import Announcement
from pfunc.bus import Bus
from pfunc.engine import Engine
from pfunc.project import Project
from pfunc.result import PublishReport
from pfunc.server.subscribers import MESSAGE_TYPES, Delivery, MessageLog

PRESENCE_SUFFIX = "-pnpres"
SUBSCRIBE_TIMEOUT = 280.0  # seconds a subscribe long-poll waits, as PubNub's servers do

LogEvent = Callable[[dict[str, Any]], None]


class DevState:
    def __init__(
        self, engine: Engine, log: LogEvent, subscribe_timeout: float = SUBSCRIBE_TIMEOUT
    ) -> None:
        self.engine = engine
        self.log = log
        self.subscribe_timeout = subscribe_timeout
        self.messages = MessageLog(engine.runtime.keyset.subscribe_key)
        if engine.groups is not None:
            loop = asyncio.get_running_loop()
            engine.groups.listeners.append(
                lambda: loop.call_soon_threadsafe(self.messages.groups_changed)
            )
        self.presence = engine.presence  # the same functions read
        engine.listeners.append(self._announced)
        self._background: set[asyncio.Task[Any]] = set()
        engine.bus.listeners.append(self._deliver)
        # When a file of the project was last saved, and when the reload of the saves
        # ended (wall-clock ms): a recording replays the files as they are now.
        self.last_save_ms = 0.0
        self.last_reload_ms = 0.0
        self.reloaded_save_ms = 0.0  # the last save a finished reload read

    def note_save(self) -> None:
        self.last_save_ms = time.time() * 1000

    def note_reloaded(self, saved_ms: float) -> None:
        """A reload ended that read the saves made up to `saved_ms`; one that read none
        not read before (a save of a file no function runs) changed no code."""
        if saved_ms <= self.reloaded_save_ms:
            return
        self.last_reload_ms = time.time() * 1000
        self.reloaded_save_ms = saved_ms

    def ran_current_code(self, started_ms: float) -> bool:
        """Whether an execution that started at `started_ms` ran the files as they are:
        no save since it started, and every save before it read by a reload that ended
        before it started (one made just before ran the old code until its reload)."""
        saved = self.last_save_ms
        if saved >= started_ms:
            return False
        return saved == 0 or (self.reloaded_save_ms >= saved and self.last_reload_ms <= started_ms)

    @property
    def project(self) -> Project:
        return self.engine.project

    @property
    def bus(self) -> Bus:
        return self.engine.bus

    def timetoken(self) -> str:
        return self.engine.runtime.timetokens.next()

    def _deliver(self, report: PublishReport) -> None:
        for push in report.pushes:  # what PubNub would send to devices; nothing leaves here
            self.log({"type": "push", "channel": report.channel, **push})
        self.messages.add(
            Delivery(
                int(report.timetoken or 0),
                report.channel,
                report.message,
                MESSAGE_TYPES.get(report.verb),
                publisher=report.publisher,
                meta=report.meta,
                sequence=report.sequence,
                custom_type=report.custom_type,
                given_timetoken=int(report.given_timetoken) if report.given_timetoken else None,
            )
        )

    def _announced(self, announcement: Announcement) -> None:
        channel, payload, kind, publisher = announcement
        self.messages.add(
            Delivery(
                int(self.timetoken()),
                channel,
                payload,
                kind,
                publisher=publisher,
                presence=channel.endswith(PRESENCE_SUFFIX),
            )
        )

    def spawn(self, work: Awaitable[Any]) -> None:
        """Run `work` in the background; cancelled when the server stops."""
        task = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def background(self) -> list[asyncio.Task[Any]]:
        return list(self._background)
