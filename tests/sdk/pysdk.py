"""The official PubNub Python SDK as a client of a real `pfunc dev`: a configured
`PubNub` instance, and a listener that records what a subscription receives."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from pubnub.callbacks import SubscribeCallback
from pubnub.pnconfiguration import PNConfiguration
from pubnub.pubnub import PubNub


def py_client(port: int, keys: tuple[str, str], user: str, **settings: Any) -> PubNub:
    """A PubNub client of the dev server at 127.0.0.1:`port`; `settings` are
    PNConfiguration attributes (secret_key, auth_key, ...)."""
    config = PNConfiguration()
    config.publish_key, config.subscribe_key = keys
    config.user_id = user
    config.origin = f"127.0.0.1:{port}"
    config.ssl = False
    config.enable_subscribe = True
    config.daemon = True
    for name, value in settings.items():
        setattr(config, name, value)
    return PubNub(config)


class Recorder(SubscribeCallback):
    """Every event a subscription delivers, by kind (message, signal, presence, file,
    objects, message_action, status)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []
        self._changed = threading.Condition()

    def _add(self, kind: str, event: Any) -> None:
        with self._changed:
            self.events.append((kind, event))
            self._changed.notify_all()

    def status(self, pubnub: PubNub, status: Any) -> None:
        self._add("status", status)

    def message(self, pubnub: PubNub, message: Any) -> None:
        self._add("message", message)

    def signal(self, pubnub: PubNub, signal: Any) -> None:
        self._add("signal", signal)

    def presence(self, pubnub: PubNub, presence: Any) -> None:
        self._add("presence", presence)

    def file(self, pubnub: PubNub, file_message: Any) -> None:
        self._add("file", file_message)

    def uuid(self, pubnub: PubNub, event: Any) -> None:
        self._add("objects", event)

    def channel(self, pubnub: PubNub, event: Any) -> None:
        self._add("objects", event)

    def membership(self, pubnub: PubNub, event: Any) -> None:
        self._add("objects", event)

    def message_action(self, pubnub: PubNub, event: Any) -> None:
        self._add("message_action", event)

    def wait_for(
        self, kind: str, predicate: Callable[[Any], bool] = lambda event: True, timeout: float = 10
    ) -> Any:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for seen, event in self.events:
                    if seen == kind and predicate(event):
                        return event
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no {kind} event arrived; got {self.events}")
                self._changed.wait(left)
