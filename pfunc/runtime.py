"""The services every execution of a session shares: store, limits, clock, keyset,
secrets, mocks and host modules. It holds no bus and no functions: `engine.py` wires
those around it, and modules receive what they may use as explicit capabilities."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pfunc.aio import settled
from pfunc.clock import Clock, Timetokens
from pfunc.events import Keyset
from pfunc.limits import Profile
from pfunc.modules import HostModules
from pfunc.store import KVStore

if TYPE_CHECKING:
    import asyncio

    from pfunc.project import MockRule
    from pfunc.result import Result


@dataclass
class Runtime:
    store: KVStore
    profile: Profile
    clock: Clock
    keyset: Keyset = field(default_factory=Keyset)
    modules: HostModules = field(default_factory=HostModules)
    vault: dict[str, str] = field(default_factory=dict)
    mocks: list[MockRule] = field(default_factory=list)
    offline: bool = False  # xhr requests no mock answers are refused instead of sent
    threaded: bool = False  # run each sandbox on a thread of its own (the dev server)
    main_loop: asyncio.AbstractEventLoop | None = None  # where network and bus calls run
    random_seed: int | None = None  # seeds Math.random in new sandboxes (test runs)
    # Hand loaded sandboxes on to the next engine for the same code (scenarios:
    # a warm context, as production reuses isolates) instead of closing them.
    warm_sandboxes: bool = False
    renewed_sandboxes: int = 0  # of those, how many this engine was handed (and used)
    timetokens: Timetokens = field(init=False)  # on this runtime's clock
    # Called with every finished execution, chained ones included (the dev server's log).
    observers: list[Callable[[Result], None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.timetokens = Timetokens(self.clock)

    async def close(self) -> None:
        for module in self.modules.values():
            closer = getattr(module, "close", None)
            if closer is not None:
                await settled(closer())
        await self.store.close()
