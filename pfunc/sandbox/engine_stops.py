"""How QuickJS says it stopped a handler's code, and why it stopped it."""

from __future__ import annotations

from pfunc.sandbox import MEMORY, TIMEOUT, SandboxInterrupted

# QuickJS's own messages when it stops code, and why it stopped it.
ENGINE_STOPS = {"interrupted": TIMEOUT, "out of memory": MEMORY}


def interruption(error: Exception) -> SandboxInterrupted | None:
    """The stop an exception out of the engine is (its time limit, memory), or None."""
    text = str(error)
    if "interrupted" in text:
        return SandboxInterrupted(TIMEOUT, text)
    if "out of memory" in text or isinstance(error, MemoryError):
        return SandboxInterrupted(MEMORY, text)
    # Promise jobs catch what handler code throws; an exception that escapes one with no
    # value at all is the engine failing to allocate even the error: out of memory.
    if text.strip() == "null":
        return SandboxInterrupted(MEMORY, text)
    return None
