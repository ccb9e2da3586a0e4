"""File messages: what PubNub publishes for a shared file, as file handlers see it."""

from __future__ import annotations

from typing import Any

# A file event someone describes without naming a file (pfunc run --event, scenarios).
DEFAULT_FILE = {"id": "00000000-0000-4000-8000-000000000000", "name": "file.txt"}


def file_message(text: Any, file: dict[str, str]) -> dict[str, Any]:
    """What PubNub publishes for a file, and what file handlers see as request.message:
    the text sent with it (or null) and the file's id and name."""
    return {"message": text, "file": {"id": file["id"], "name": file["name"]}}


def is_file_message(value: Any) -> bool:
    """Whether `value` has a file message's shape: an object naming its file. (An SDK's
    encrypted file message is one text, its ciphertext.)"""
    return isinstance(value, dict) and isinstance(value.get("file"), dict)


def keep_file(published: Any, changed: Any) -> tuple[Any, bool]:
    """A before-publish-file function's message, with the file it was sent about: it may
    change the text (and add fields), not point the message at another file or drop it. A
    value that is not a file message's shape (not an object, or an object with neither
    `message` nor `file`: `ok({replaced: true})`) becomes the text, so that subscribers,
    history and after-publish-file functions all see it. True with it when the file was
    changed."""
    if not is_file_message(published):
        return changed, False  # not a file message PubNub's SDKs send (an encrypted one)
    if not isinstance(changed, dict) or not ("message" in changed or "file" in changed):
        return {**published, "message": changed}, False
    return {**changed, "file": published["file"]}, changed.get("file") != published["file"]


def as_file_message(given: Any) -> Any:
    """A given message that is a file message stays as it is; anything else is the text
    of a file message about the default file."""
    if is_file_message(given):
        return given
    return file_message(given, DEFAULT_FILE)
