"""Mobile push registrations: which channels a device token (APNs, APNs2 with topic and
environment, FCM/GCM) is registered on, kept in the project's SQLite store. pfunc keeps
the registrations; it sends no notifications: a publish carrying a push payload is
recorded as the pushes that would be sent (`would_send`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pfunc.store import KVStore


@dataclass(frozen=True)
class Device:
    kind: str  # "apns", "apns2" or "gcm" (FCM)
    token: str
    topic: str = ""  # APNs2 only
    environment: str = ""  # APNs2 only: development or production


GATEWAYS = {"apns": "apns", "apns2": "apns2", "gcm": "gcm", "fcm": "gcm"}  # FCM is GCM's successor
ENVIRONMENTS = ("development", "production")
_HEX = re.compile(r"^[0-9a-fA-F]+$")


def device_problem(device: Device) -> str | None:
    """Why PubNub refuses to register `device`, in its words; None when it is fine. PubNub
    checks an APNs token when a device is registered, not after."""
    if device.kind == "apns2" and not device.topic:
        return "Missing topic argument"
    if device.kind == "apns2" and device.environment not in ENVIRONMENTS:
        return "Invalid environment argument"
    if device.kind != "gcm" and not _HEX.match(device.token):
        return "Invalid device token"
    return None


# The publish payload key each gateway reads (PubNub's mobile push payload format).
PAYLOAD_KEYS = {"apns": ("pn_apns",), "apns2": ("pn_apns",), "gcm": ("pn_fcm", "pn_gcm")}


def push_payloads(message: Any) -> dict[str, Any]:
    """The push payloads a published message carries, by the key it carries them under."""
    if not isinstance(message, dict):
        return {}
    return {key: message[key] for key in ("pn_apns", "pn_fcm", "pn_gcm") if key in message}


class PushRegistrations:
    def __init__(self, store: KVStore, keyset: str) -> None:
        self.store = store
        self.keyset = keyset

    def _key(self, device: Device) -> tuple[str, str, str, str, str]:
        return (self.keyset, device.kind, device.token, device.topic, device.environment)

    async def add(self, device: Device, channels: list[str]) -> None:
        for channel in channels:
            await self.store.execute(
                "INSERT OR IGNORE INTO push_devices(keyset,kind,token,topic,environment,channel) "
                "VALUES(?,?,?,?,?,?)",
                (*self._key(device), channel),
            )

    async def remove(self, device: Device, channels: list[str]) -> None:
        for channel in channels:
            await self.store.execute(
                "DELETE FROM push_devices WHERE keyset=? AND kind=? AND token=? AND topic=? "
                "AND environment=? AND channel=?",
                (*self._key(device), channel),
            )

    async def channels(self, device: Device) -> list[str]:
        rows = await self.store.execute(
            "SELECT channel FROM push_devices WHERE keyset=? AND kind=? AND token=? AND topic=? "
            "AND environment=? ORDER BY channel",
            self._key(device),
        )
        return [row[0] for row in rows]

    async def remove_device(self, device: Device) -> None:
        await self.store.execute(
            "DELETE FROM push_devices WHERE keyset=? AND kind=? AND token=? AND topic=? "
            "AND environment=?",
            self._key(device),
        )

    async def would_send(self, channel: str, message: Any) -> list[dict[str, Any]]:
        """The notifications PubNub would send for `message` published on `channel`: one
        per device registered on the channel whose gateway the message has a payload for."""
        payloads = push_payloads(message)
        if not payloads:
            return []
        rows = await self.store.execute(
            "SELECT kind, token, topic, environment FROM push_devices WHERE keyset=? AND "
            "channel=? ORDER BY kind, token",
            (self.keyset, channel),
        )
        pushes = []
        for kind, token, topic, environment in rows:
            key = next((k for k in PAYLOAD_KEYS.get(kind, ()) if k in payloads), None)
            if key is None or not _addressed(payloads[key], kind, token, topic, environment):
                continue
            sent = _as_sent(payloads[key])
            push: dict[str, Any] = {"gateway": kind, "device": token, "payload": sent}
            if topic:
                push["topic"], push["environment"] = topic, environment
            pushes.append(push)
        return pushes


# PubNub's own keys in a push payload: they address the push, and are not sent with it.
_CONTROL_KEYS = ("pn_push", "pn_exceptions", "excluded_devices")


def _as_sent(payload: Any) -> Any:
    if not isinstance(payload, dict):
        return payload
    return {key: value for key, value in payload.items() if key not in _CONTROL_KEYS}


def _addressed(payload: Any, kind: str, token: str, topic: str, environment: str) -> bool:
    """Whether a device gets this payload: not one the publisher excluded (`pn_exceptions`,
    and APNs' `excluded_devices`: "add the sending device's push token to this key", so a
    sender gets no push of its own message), and for APNs2, one of the `pn_push` targets
    when the payload names them (an app's topic and environment)."""
    if not isinstance(payload, dict):
        return True
    excluded = [*_tokens(payload.get("pn_exceptions")), *_tokens(payload.get("excluded_devices"))]
    targets = [
        target
        for push in payload.get("pn_push") or []
        if isinstance(push, dict)
        for target in push.get("targets") or []
        if isinstance(target, dict)
    ]
    for target in targets:
        excluded += _tokens(target.get("excluded_devices"))
    if token.lower() in {device.lower() for device in excluded}:
        return False
    if kind != "apns2" or not targets:
        return True
    return any(
        target.get("topic") == topic and target.get("environment", "development") == environment
        for target in targets
    )


def _tokens(given: Any) -> list[str]:
    return [token for token in given if isinstance(token, str)] if isinstance(given, list) else []
