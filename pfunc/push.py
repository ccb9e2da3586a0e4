"""Mobile push registrations: which channels a device token (APNs, APNs2 with topic and
environment, FCM/GCM) is registered on, kept in the project's SQLite store. pfunc keeps
the registrations; it sends no notifications."""

from __future__ import annotations

from dataclasses import dataclass

from pfunc.store import KVStore


@dataclass(frozen=True)
class Device:
    kind: str  # "apns", "apns2" or "gcm" (FCM)
    token: str
    topic: str = ""  # APNs2 only
    environment: str = ""  # APNs2 only: development or production


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
