"""How shared files' URLs are written: the dev server's address, the keyset, and each
path segment escaped as the SDKs escape it. The files API and functions' getFileUrl (which
must not have to build the files API to answer) share it."""

from __future__ import annotations

from functools import cache
from urllib.parse import quote

# Where file URLs point until the dev server names its own address (Files.origin).
DEFAULT_FILES_ORIGIN = "http://127.0.0.1:8787"


@cache  # read for every execution (functions' getFileUrl), from one or two keysets
def files_base_url(origin: str, keyset: str) -> str:
    """Where a keyset's file URLs start."""
    return f"{origin}/v1/files/{quote(keyset, safe='')}"


def file_url(base: str, channel: str, file_id: str, name: str) -> str:
    return (
        f"{base}/channels/{quote(channel, safe='')}/files/{quote(file_id, safe='')}/"
        f"{quote(name, safe='')}"
    )
