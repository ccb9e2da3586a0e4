"""Shared files (PubNub's File Sharing) of a project: each file's bytes under the
project's state folder, its name, size, type and upload time in the SQLite store, and the
file message that announces it, published through the bus.

Names a client chose never become paths: a file's bytes live at `<folder>/<id>`, where
`id` is a UUID pfunc made up; the channel and the file name are only stored as data.
The dev server's endpoints, `pfunc send-file` and (through the engine) the `pubnub` module
of functions use this one API.
"""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pfunc.channels import name_problem
from pfunc.clock import Clock
from pfunc.events import FILE, is_unicode
from pfunc.file_messages import file_message
from pfunc.file_urls import DEFAULT_FILES_ORIGIN, file_url, files_base_url
from pfunc.result import PublishReport
from pfunc.store import KVStore

MAX_FILE_BYTES = 5 * 1024 * 1024  # PubNub's limit on one file
MAX_NAME_CHARS = 255  # a file name, as a file system allows one path component
LIST_LIMIT = 100  # listFiles' default and ceiling
DEFAULT_TYPE = "application/octet-stream"
_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

Publish = Callable[..., Awaitable[PublishReport]]


class FileTooLarge(Exception):
    """The upload is over MAX_FILE_BYTES; nothing was kept."""


@dataclass
class SharedFile:
    channel: str
    id: str
    name: str
    size: int
    content_type: str
    created: int  # ms since the epoch

    def to_json(self) -> dict[str, Any]:
        """As listFiles carries one file."""
        when = datetime.fromtimestamp(self.created / 1000, UTC)
        return {
            "name": self.name,
            "id": self.id,
            "size": self.size,
            "created": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }


def name_problem_of_file(name: Any) -> str | None:
    """Why `name` cannot name a shared file, or None. The name ends the download URL
    (.../files/ID/NAME), so it cannot hold a slash."""
    if not isinstance(name, str) or not name:
        return "a file needs a name"
    if len(name) > MAX_NAME_CHARS:
        return f"the file name is {len(name)} characters; the limit is {MAX_NAME_CHARS}"
    if "/" in name or "\\" in name or name in (".", ".."):
        return f"the file name {name[:60]!r} cannot hold a slash or be . or .."
    if any(ord(char) < 32 or ord(char) == 127 for char in name):
        return "the file name cannot hold control characters"
    if not is_unicode(name):  # a local file's name whose bytes are not UTF-8
        return "the file name is not UTF-8 text; rename the file"
    return None


def is_file_id(text: str) -> bool:
    return bool(_ID.match(text))


class Files:
    def __init__(
        self, store: KVStore, keyset: str, folder: Path, clock: Clock, publish: Publish
    ) -> None:
        self.store = store
        self.keyset = keyset
        self.folder = folder  # where the bytes are: <folder>/<id>
        self.clock = clock
        self._publish = publish
        # Where download URLs point; the dev server sets its own address.
        self.origin = DEFAULT_FILES_ORIGIN

    @staticmethod
    def new_id() -> str:
        return str(uuid.uuid4())

    def path_of(self, file_id: str) -> Path:
        if not is_file_id(file_id):  # never a path from a client's text
            raise ValueError(f"not a file id: {file_id[:40]!r}")
        return self.folder / file_id

    # --- keeping files -----------------------------------------------------------------

    async def save(
        self,
        channel: str,
        file_id: str,
        name: str,
        content_type: str | None,
        chunks: AsyncIterator[bytes],
    ) -> SharedFile:
        """Keep an upload as it arrives; FileTooLarge (and nothing kept) past the limit.
        A second upload under the same id replaces the first."""
        target = self.path_of(file_id)
        self.folder.mkdir(parents=True, exist_ok=True)
        partial = self.folder / f".{file_id}.part"
        size = 0
        try:
            with open(partial, "wb") as out:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > MAX_FILE_BYTES:
                        raise FileTooLarge(f"{name}: more than {MAX_FILE_BYTES:,} bytes")
                    out.write(chunk)
            os.replace(partial, target)
        finally:
            with contextlib.suppress(FileNotFoundError):
                partial.unlink()
        shared = SharedFile(
            channel, file_id, name, size, content_type or DEFAULT_TYPE, self.clock.now_ms()
        )
        try:
            await self.store.execute(
                "INSERT OR REPLACE INTO files(keyset,channel,id,name,size,content_type,created) "
                "VALUES(?,?,?,?,?,?,?)",
                (self.keyset, channel, file_id, name, size, shared.content_type, shared.created),
            )
        except Exception:  # no row, no bytes: nothing kept that nothing names
            with contextlib.suppress(FileNotFoundError):
                target.unlink()
            raise
        return shared

    async def add(
        self, channel: str, name: str, data: bytes, content_type: str | None = None
    ) -> SharedFile:
        """Keep `data` as a new file on `channel` (what an SDK's upload does)."""
        problem = name_problem(channel) or name_problem_of_file(name)
        if problem:
            raise ValueError(problem)

        async def one_chunk() -> AsyncIterator[bytes]:
            yield data

        return await self.save(channel, self.new_id(), name, content_type, one_chunk())

    async def get(self, channel: str | None, file_id: str, name: str) -> SharedFile | None:
        """The file with this id and name on `channel` (None: on any channel, as ids are
        unique), if it is still there."""
        rows = await self.store.execute(
            "SELECT channel,id,name,size,content_type,created FROM files "
            "WHERE keyset=? AND (channel=? OR ? IS NULL) AND id=? AND name=?",
            (self.keyset, channel, channel, file_id, name),
        )
        if not rows or not self.path_of(rows[0][1]).is_file():
            return None
        return SharedFile(*rows[0])

    async def read(self, channel: str, file_id: str, name: str) -> bytes | None:
        shared = await self.get(channel, file_id, name)
        return None if shared is None else self.path_of(shared.id).read_bytes()

    async def list_files(
        self, channel: str, limit: int = LIST_LIMIT, next: str | None = None
    ) -> tuple[list[SharedFile], str | None]:
        """At most `limit` files of `channel` in id order, and the token of the next page
        (None on the last one). `next` is a token a previous page gave."""
        limit = max(1, min(limit, LIST_LIMIT))
        rows = await self.store.execute(
            "SELECT channel,id,name,size,content_type,created FROM files "
            "WHERE keyset=? AND channel=? AND id>? ORDER BY id LIMIT ?",
            (self.keyset, channel, next or "", limit + 1),
        )
        found = [SharedFile(*row) for row in rows]
        more = len(found) > limit
        return found[:limit], (found[limit - 1].id if more else None)

    async def delete_file(self, channel: str, file_id: str, name: str) -> bool:
        """Delete a file; False when there was none (PubNub answers the same either way)."""
        rows = await self.store.execute(
            "DELETE FROM files WHERE keyset=? AND channel=? AND id=? AND name=? RETURNING id",
            (self.keyset, channel, file_id, name),
        )
        if rows:
            with contextlib.suppress(FileNotFoundError):
                self.path_of(rows[0][0]).unlink()
        return bool(rows)

    def base_url(self) -> str:
        """Where this keyset's file URLs start (a function's getFileUrl builds on it)."""
        return files_base_url(self.origin, self.keyset)

    def file_url(self, channel: str, file_id: str, name: str) -> str:
        """The file's download URL, as the SDKs' getFileUrl builds it."""
        return file_url(self.base_url(), channel, file_id, name)

    # --- file messages ---------------------------------------------------------------------

    async def publish(
        self,
        channel: str,
        payload: Any,
        *,
        meta: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        hop: int = 1,
        after_waits: bool = True,
        client: dict[str, str] | None = None,
    ) -> PublishReport:
        """Publish a file message as sent (an SDK's publish-file payload): through the
        before-publish-file functions, to subscribers and history, then the after ones
        (see Bus.publish for `after_waits` and `client`)."""
        return await self._publish(
            channel,
            payload,
            verb=FILE,
            hop=hop,
            meta=meta,
            params=params,
            after_waits=after_waits,
            client=client,
        )

    async def publish_file(
        self,
        channel: str,
        message: Any,
        file_id: str,
        file_name: str,
        *,
        meta: dict[str, Any] | None = None,
        store: bool = True,
        ttl: int | None = None,
        custom_message_type: str | None = None,
        uuid: str | None = None,
        hop: int = 1,
    ) -> PublishReport:
        """Announce an uploaded file on `channel` with `message` as its text (publishFile)."""
        params: dict[str, Any] = {"store": "1" if store else "0"}
        if ttl is not None:
            params["ttl"] = str(ttl)
        if custom_message_type:
            params["custom_message_type"] = custom_message_type
        if uuid:
            params["uuid"] = uuid
        payload = file_message(message, {"id": file_id, "name": file_name})
        return await self.publish(channel, payload, meta=meta, params=params, hop=hop)
