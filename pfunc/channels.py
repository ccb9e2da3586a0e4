"""Channel names and PubNub wildcards: is a name valid, does a pattern match, and which
channel an event goes to when none is given."""

from __future__ import annotations

import re
from collections.abc import Iterable

DEFAULT_CHANNEL = "default"
PRESENCE_SUFFIX = "-pnpres"  # a channel's presence channel is its name and this
# PubNub's list of what a channel name may not hold (its support article "What are valid
# channel names"): comma, colon, slash, backslash, space, and (below) control characters;
# `*` is a wildcard's (channel_problem); quotes are allowed.
_FORBIDDEN = set(" ,:/\\")


def channel_matches(pattern: str, channel: str) -> bool:
    """Exact names, or a PubNub wildcard `a.*` / `a.b.*` matching any deeper channel."""
    if pattern.endswith(".*"):
        return channel.startswith(pattern[:-1]) and len(channel) > len(pattern) - 1
    return pattern == channel


def has_control_character(text: str) -> bool:
    """A C0 control character or DEL (NUL included): what PubNub's names may not hold."""
    return any(ord(character) < 0x20 or ord(character) == 0x7F for character in text)


def channel_problem(channel: str) -> str | None:
    """Why `channel` is not a valid channel name or PubNub wildcard, or None."""
    if not channel:
        return "it is empty"
    if set(channel) & _FORBIDDEN:
        return "it contains a space, comma, colon, slash or backslash"
    if has_control_character(channel):
        return "it contains a control character (PubNub refuses them, NUL included)"
    if "*" not in channel:
        return None
    segments = channel.split(".")
    if channel.count("*") > 1 or segments[-1] != "*":
        return "* may only be the last segment, as in chat.*"
    literal = segments[:-1]
    if not literal or any(not part for part in literal):
        return "a wildcard needs one or two literal segments before .*, as in chat.*"
    if len(literal) > 2:
        return "a wildcard allows at most two literal segments before .*, as in a.b.*"
    return None


def name_problem(channel: str) -> str | None:
    """Why `channel` cannot be published to (or named as one channel): not a valid name,
    or a wildcard; None when it can."""
    return channel_problem(channel) or (
        "publish to a channel name, not a wildcard" if "*" in channel else None
    )


# A publish's custom message type (PubNub's SDK contract, publishWithCustomMssgType):
# 3 to 50 letters, digits, "-" and "_", not starting with either sign nor "pn-"/"pn_".
_CUSTOM_TYPE = re.compile(r"(?!pn[-_])[A-Za-z0-9][A-Za-z0-9_-]{2,49}")


def custom_type_problem(custom_type: str | None) -> bool:
    """Whether a publish's custom_message_type is one PubNub refuses (absent is fine)."""
    return custom_type is not None and _CUSTOM_TYPE.fullmatch(custom_type) is None


def default_channel(channels: Iterable[str]) -> str:
    """Where an event goes when no channel is given: the first exact channel name
    (wildcards cannot be published to), else "default"."""
    exact = [channel for channel in channels if not channel.endswith("*")]
    return exact[0] if exact else DEFAULT_CHANNEL
