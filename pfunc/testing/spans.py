"""Durations as scenarios (`advance = "6m"`) and the pytest plugin's clock write them."""

from __future__ import annotations

import math
import re
from typing import Any

MAX_SPAN = 100 * 365 * 86400.0  # the clock stays a date Python and JavaScript can show
_SPAN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_SPAN_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_span(value: Any) -> float:
    """Seconds from a number of seconds or text like "6m", "90s", "2h", "1d"."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value) or value < 0 or value > MAX_SPAN:
            raise ValueError(f"{value!r} is not a duration from 0 to 100 years")
        return float(value)
    match = _SPAN.match(str(value))
    if not match:
        raise ValueError(f'{value!r} is not a duration; write seconds or text like "6m"')
    seconds = float(match.group(1)) * _SPAN_SECONDS[match.group(2) or "s"]
    if seconds > MAX_SPAN:
        raise ValueError(f"{value!r} is longer than 100 years")
    return seconds
