"""Something for subscribers that is not a publish (a message action, an objects event,
a presence change made by a function): (channel, payload, envelope "e", publisher). The
dev server listens; elsewhere there are no subscribers to tell."""

from __future__ import annotations

from typing import Any

Announcement = tuple[str, Any, int | None, str | None]


def presence_payload(event: dict[str, Any]) -> dict[str, Any]:
    """A presence event as PubNub delivers it to `-pnpres` subscribers: a user's state
    under "data" (the SDKs read it there; functions see it as `state`)."""
    return {("data" if key == "state" else key): value for key, value in event.items()}
