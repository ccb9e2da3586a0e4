"""The one composition root: open the store, build the runtime, the function registry and
the bus, and wire them together once. The CLI, `pfunc test`, the pytest plugin and the
dev server all start here; nothing else constructs these pieces.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pfunc.access import AccessManager
from pfunc.announcement import Announcement
from pfunc.app_context import AppContext
from pfunc.bus import Bus
from pfunc.channel_groups import ChannelGroups
from pfunc.clock import Clock
from pfunc.errors import PfuncUsageError
from pfunc.events import Keyset
from pfunc.files import Files
from pfunc.functions import FunctionRegistry
from pfunc.history import MessageHistory
from pfunc.limits import Profile
from pfunc.presence import Presence
from pfunc.project import Project, load_secrets, secret_key
from pfunc.pubnub_data import PubNubData
from pfunc.push import PushRegistrations
from pfunc.result import PublishReport
from pfunc.runtime import Runtime
from pfunc.store import KVStore, StoreOpenError


@dataclass
class Engine:
    runtime: Runtime
    functions: FunctionRegistry
    bus: Bus
    history: MessageHistory
    presence: Presence = field(default_factory=Presence)
    groups: ChannelGroups | None = None
    push: PushRegistrations | None = None
    objects: AppContext | None = None  # App Context: users, channels, memberships
    access: AccessManager | None = None  # Access Manager: tokens, grants, enforcement
    files: Files | None = None  # shared files, and their file messages
    listeners: list[Callable[[Announcement], None]] = field(default_factory=list)

    def announce(self, announcement: Announcement) -> None:
        """Tell subscribers of a change that is not a publish (a message action...)."""
        for listener in self.listeners:
            listener(announcement)

    @property
    def project(self) -> Project:
        return self.functions.project

    async def publish(self, channel: str, message: Any, **options: Any) -> PublishReport:
        """A publish through the project's functions (the capability handlers get)."""
        return await self.bus.publish(channel, message, **options)


@asynccontextmanager
async def open_engine(
    project: Project,
    profile: Profile,
    clock: Clock,
    *,
    kv_path: Path | None = None,
    keyset: Keyset | None = None,
    offline: bool = False,
    environ: Mapping[str, str] | None = None,
    random_seed: int | None = None,
    threaded: bool = False,
) -> AsyncIterator[Engine]:
    """An engine over the project's store, secrets, mocks and functions; closed on exit.

    An unusable KV path is a usage error (exit 2 on the command line).
    """
    try:
        store = KVStore.open(kv_path or project.kv_path)
    except StoreOpenError as error:
        raise PfuncUsageError(str(error)) from None
    runtime = Runtime(
        store,
        profile,
        clock,
        keyset or project.keyset,
        vault=load_secrets(project, dict(environ or {})),
        mocks=list(project.mocks),
        offline=offline,
        threaded=threaded,
        main_loop=asyncio.get_running_loop(),
        random_seed=random_seed,
    )
    store.home = runtime.main_loop
    engine: Engine

    async def publish(channel: str, message: Any, **options: Any) -> PublishReport:
        return await engine.publish(channel, message, **options)

    history = MessageHistory(store, runtime.keyset.subscribe_key)
    presence = Presence()

    def announce(announcement: Announcement) -> None:
        engine.announce(announcement)

    groups = ChannelGroups(store, runtime.keyset.subscribe_key)
    push = PushRegistrations(store, runtime.keyset.subscribe_key)
    objects = AppContext(store, runtime.keyset.subscribe_key, runtime.timetokens.next, announce)
    access = AccessManager(
        store, runtime.keyset.subscribe_key, clock, secret_key(project, environ or {})
    )
    # The bytes of shared files sit next to the store, in the project's state folder.
    files = Files(store, runtime.keyset.subscribe_key, store.path.parent / "files", clock, publish)
    data = PubNubData(history, presence, announce, groups, push, objects, access, files)
    functions = FunctionRegistry(project, runtime, publish, data)
    engine = Engine(
        runtime,
        functions,
        Bus(runtime, functions, history, push),
        history,
        presence,
        groups,
        push,
        objects=objects,
        access=access,
        files=files,
    )
    try:
        yield engine
    finally:
        functions.close()
        await runtime.close()
