"""The one composition root: open the store, build the runtime, the function registry and
the bus, and wire them together once. The CLI, `pfunc test`, the pytest plugin and the
dev server all start here; nothing else constructs these pieces.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pfunc.aio import kept_done, running_loop
from pfunc.announcement import Announcement
from pfunc.bus import Bus
from pfunc.channel_groups import ChannelGroups
from pfunc.clock import Clock
from pfunc.errors import PfuncUsageError
from pfunc.events import Keyset
from pfunc.functions import FunctionRegistry
from pfunc.history import MessageHistory
from pfunc.limits import Profile
from pfunc.presence import Presence
from pfunc.project import Project
from pfunc.pubnub_data import PubNubData
from pfunc.push import PushRegistrations
from pfunc.result import PublishReport
from pfunc.runtime import Runtime
from pfunc.store import KVStore, StoreOpenError
from pfunc.vault_sources import load_secrets, secret_key

if TYPE_CHECKING:
    from pfunc.access import AccessManager
    from pfunc.app_context import AppContext
    from pfunc.files import Files


@dataclass
class Engine:
    runtime: Runtime
    functions: FunctionRegistry
    bus: Bus
    history: MessageHistory
    presence: Presence = field(default_factory=Presence)
    groups: ChannelGroups | None = None
    push: PushRegistrations | None = None
    data: PubNubData | None = None  # also what functions' pubnub module reaches
    listeners: list[Callable[[Announcement], None]] = field(default_factory=list)

    @property
    def objects(self) -> AppContext | None:
        """App Context: users, channels, memberships (built on first use)."""
        return self.data.objects if self.data else None

    @property
    def access(self) -> AccessManager | None:
        """Access Manager: tokens, grants, enforcement (built on first use)."""
        return self.data.access if self.data else None

    @property
    def files(self) -> Files | None:
        """Shared files and their file messages (built on first use)."""
        return self.data.files if self.data else None

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
    warm_sandboxes: bool = False,
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
        main_loop=running_loop(),
        random_seed=random_seed,
        warm_sandboxes=warm_sandboxes,
    )
    store.lock_waits.home = runtime.main_loop
    store.lock_waits.keep_loop_free = threaded
    if threaded:  # the dev server: no commit on its loop waits for a checkpoint's fsync
        store.checkpoint_in_background()
    engine: Engine

    async def publish(channel: str, message: Any, **options: Any) -> PublishReport:
        return await engine.publish(channel, message, **options)

    history = MessageHistory(store, runtime.keyset.subscribe_key)
    if clock.fixed_ms_or_none() is not None and str(store.path) != ":memory:":
        # A fixed clock's timetokens start from the same moment in every run: in a store
        # that is kept, they follow what it holds, never repeat it (a repeat would
        # replace a stored message and collide with its actions).
        runtime.timetokens.at_least(await history.newest_timetoken())
    presence = Presence()

    def announce(announcement: Announcement) -> None:
        engine.announce(announcement)

    groups = ChannelGroups(store, runtime.keyset.subscribe_key)
    push = PushRegistrations(store, runtime.keyset.subscribe_key)
    keyset = runtime.keyset.subscribe_key

    def objects() -> AppContext:
        from pfunc.app_context import AppContext

        return AppContext(store, keyset, runtime.timetokens.next, announce)

    def access() -> AccessManager:
        from pfunc.access import AccessManager

        return AccessManager(store, keyset, clock, secret_key(project, environ or {}))

    cleanups: list[Callable[[], None]] = []

    def files() -> Files:
        # The bytes of shared files sit next to the store, in the project's state folder;
        # a store in memory (a scenario's) gets a temporary folder, removed on close.
        from pfunc.files import Files

        folder = store.path.parent / "files"
        if str(store.path) == ":memory:":
            import shutil
            import tempfile

            folder = Path(tempfile.mkdtemp(prefix="pfunc-files-"))
            cleanups.append(lambda: shutil.rmtree(folder, ignore_errors=True))
        return Files(store, keyset, folder, clock, publish)

    data = PubNubData(
        history,
        presence,
        announce,
        groups,
        push,
        {"objects": objects, "access": access, "files": files},
    )
    functions = FunctionRegistry(project, runtime, publish, data)
    engine = Engine(
        runtime,
        functions,
        Bus(runtime, functions, history, push),
        history,
        presence,
        groups,
        push,
        data,
    )
    try:
        yield engine
    finally:
        await kept_done()  # publishes still under way finish before the store closes
        functions.close()
        await runtime.close()
        for cleanup in cleanups:
            cleanup()
