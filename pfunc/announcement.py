"""Something for subscribers that is not a publish (a message action, an objects event,
a presence change made by a function): (channel, payload, envelope "e", publisher). The
dev server listens; elsewhere there are no subscribers to tell."""

from __future__ import annotations

from typing import Any

Announcement = tuple[str, Any, int | None, str | None]
