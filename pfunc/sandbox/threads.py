"""A thread with an event loop of its own, for the dev server's sandboxes.

QuickJS releases the GIL while it runs, so an execution on its own thread cannot
stall the server's loop, even in a runaway loop. The whole execution runs there
(JavaScript rounds and local KV calls), so it costs one hop out and one back; calls
that need the server's loop (network, the bus) hop to it and back.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")

# QuickJS checks its stack limit against the C stack of the calling thread; the quickjs
# package gives its own worker threads 8 MiB for the same reason.
STACK_BYTES = 8 * 1024 * 1024


class SandboxThread:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        previous = threading.stack_size()
        threading.stack_size(STACK_BYTES)
        try:
            self._thread = threading.Thread(
                target=self._serve, args=(ready,), name="pfunc-sandbox", daemon=True
            )
            self._thread.start()
        finally:
            threading.stack_size(previous)
        ready.wait()

    def _serve(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(ready.set)
        self.loop.run_forever()
        self.loop.close()

    def submit(self, work: Coroutine[Any, Any, T]) -> Future[T]:
        return asyncio.run_coroutine_threadsafe(work, self.loop)

    async def run(self, work: Coroutine[Any, Any, T]) -> T:
        """Run `work` on this thread and await its result from the calling loop."""
        return await asyncio.wrap_future(self.submit(work))

    def close(self) -> None:
        if self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
