"""What executions and publishes produce: the one Result of every execution and its JSON
form (docs/handlers.md, "What pfunc reports"), and the PublishReport of every publish,
fire or signal, with a typed Drop when the bus refused to route it."""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any, Protocol

OUTCOMES = ("ok", "abort", "response", "error")


ERROR_TEXT_LIMIT = 64 * 1024  # characters of an error's message or stack a report keeps


def shortened(text: str, most: int) -> str:
    """`text` as a message quotes it: whole, or its first `most` - 3 characters and "..."."""
    return text if len(text) <= most else text[: most - 3] + "..."


def clipped_text(text: str) -> str:
    """The text, or its first ERROR_TEXT_LIMIT characters and how many more there were."""
    # The slack: a text already clipped (a Python worker's error) keeps its own count.
    if not isinstance(text, str) or len(text) <= ERROR_TEXT_LIMIT + 64:
        return text
    return f"{text[:ERROR_TEXT_LIMIT]}... ({len(text) - ERROR_TEXT_LIMIT} more characters)"


@dataclass
class ExecutionError:
    type: str
    message: str
    stack: str = ""
    file: str | None = None
    line: int | None = None
    column: int | None = None
    code: str | None = None

    def __post_init__(self) -> None:
        # A handler may throw megabytes of text; the report (and pfunc dev's memory of the
        # last executions, and a 500's body) keeps the start of it, and says so.
        self.message, self.stack = clipped_text(self.message), clipped_text(self.stack)

    def place(self) -> str:
        """Where it happened, for a report's one line: " (file:line:column)", or "" when
        unknown or when the message begins with the place already (a load error's)."""
        if not self.line:
            return ""
        spot = f"{self.file}:{self.line}" + (f":{self.column}" if self.column else "")
        return "" if f"{self.file}:{self.line}:" in self.message else f" ({spot})"

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"type": self.type, "message": self.message, "stack": self.stack}
        if self.file is not None:
            data.update(file=self.file, line=self.line, column=self.column)
        if self.code is not None:
            data["code"] = self.code
        return data


# The code of pfunc's own time-limit errors (a handler cannot give its errors one of
# pfunc's codes): pfunc dev answers them 503, as PubNub does a request past its limit.
TIME_LIMIT = "TIME_LIMIT"
UNSEEN_KV = "unseen:"  # in Result.observed: a KV call made while nothing noted what it found


@dataclass
class Result:
    function: str
    event: str
    outcome: str
    family: str  # "message" (publish, signal, presence), "request" or "interval"
    message: Any = None
    delivered: bool | None = None
    abort_reason: str | None = None
    response: dict[str, Any] | None = None
    logs: list[dict[str, str]] = field(default_factory=list)
    operations: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    error: ExecutionError | None = None
    duration_ms: float = 0.0
    name: str | None = None  # the function's name in pfunc.toml, when it has one
    channel: str | None = None
    path: str | None = None  # the request path, for on-request executions
    hop: int = 1
    triggered: list[PublishReport] = field(default_factory=list)  # publishes it made
    # Not part of the JSON result: the event as the handler received it, and the KV values
    # the execution first found under each key it touched (filled only while the dev
    # console records them; UNSEEN_KV set when a call was made while nothing noted what it
    # found), for tools that show an execution or turn it into a test.
    received: Any = field(default=None, repr=False, compare=False)
    observed: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    # The error's code frame, made as the execution ended from the code it ran (the file
    # may be saved since); None when there is none to make that way (code_frames.py).
    frame: str | None = field(default=None, repr=False, compare=False)
    # What the event and report texts the sandbox exchanged hold once parsed, when it says
    # (the JavaScript one; jsonio.parsed_size): what the dev console weighs it by.
    held_size: int | None = field(default=None, repr=False, compare=False)

    @property
    def is_message_event(self) -> bool:
        return self.family == "message"

    @property
    def http_status(self) -> int | None:
        """The status an on-request execution's client is answered with by pfunc dev:
        its response's; for one that failed, 503 at the time limit (PubNub's
        troubleshooting page: "Request processing exceeded the maximum allowed time"),
        else 500. None for other kinds."""
        if self.family != "request":
            return None
        if self.response is not None:
            return int(self.response["status"])
        return 503 if self.error is not None and self.error.code == TIME_LIMIT else 500

    def verdict(self) -> dict[str, Any]:
        """What the report says of how it ended: the outcome, whether the message went on
        (message events) and why it was aborted (aborts). pfunc test reads these alone."""
        verdict: dict[str, Any] = {"outcome": self.outcome}
        if self.is_message_event:
            verdict["delivered"] = self.delivered
        if self.outcome == "abort":
            verdict["abort_reason"] = self.abort_reason
        return verdict

    def to_json(self) -> dict[str, Any]:
        verdict = self.verdict()
        data: dict[str, Any] = {
            "function": self.function,
            "name": self.name,
            "event": self.event,
            "outcome": verdict.pop("outcome"),
        }
        if self.is_message_event:
            data["channel"] = self.channel
            data["hop"] = self.hop
            data["message"] = self.message
        elif self.family == "request":
            data["response"] = self.response
        data.update(verdict)  # (delivered, abort_reason: after the message, as ever)
        data.update(
            logs=self.logs,
            operations=self.operations,
            warnings=self.warnings,
            error=self.error.to_json() if self.error else None,
            duration_ms=round(self.duration_ms, 3),
        )
        if self.triggered:
            data["triggered"] = [report.to_json() for report in self.triggered]
        return data


# Why the bus refused to route a publish at all; the HTTP layer and the pubnub module map
# each reason to their own answer (a status code, a rejection) instead of reading English.
HOP_LIMIT = "hop-limit"
TOO_LARGE = "too-large"


@dataclass(frozen=True)
class Drop:
    reason: str  # HOP_LIMIT or TOO_LARGE
    message: str  # for reports and warnings


@dataclass
class PublishReport:
    """What became of one publish, fire or signal, with the executions it caused."""

    channel: str
    verb: str
    hop: int
    message: Any
    delivered: bool = False
    timetoken: str | None = None  # when it was published: subscribers read on from it
    # The timetoken its publisher gave it (`ptto`, for messages moved from elsewhere): the
    # one it is answered, stored and delivered with.
    given_timetoken: str | None = None
    drop: Drop | None = None  # why the bus did not route it at all
    stopped_by: str | None = None  # the before-* function that aborted or failed it
    executions: list[Result] = field(default_factory=list)
    publisher: str | None = None  # the publishing client's uuid, when known
    sequence: int = 1  # the publisher's sequence number (seqn), for subscribers
    custom_type: str | None = None  # the publish's custom message type
    meta: dict[str, Any] | None = None
    # Mobile push notifications this publish would send (nothing leaves the machine).
    pushes: list[dict[str, Any]] = field(default_factory=list)
    # Functions bound to the channel that a function's string message does not trigger.
    not_triggered: list[str] = field(default_factory=list)

    @property
    def message_timetoken(self) -> str | None:
        """The message's own timetoken: its publisher's, else when it was published."""
        return self.given_timetoken or self.timetoken

    @property
    def dropped(self) -> str | None:
        return self.drop.message if self.drop else None

    @property
    def failed(self) -> bool:
        """True when any execution in this publish's tree ended as an error."""
        return any(
            result.outcome == "error" or any(child.failed for child in result.triggered)
            for result in self.executions
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "verb": self.verb,
            "hop": self.hop,
            "message": self.message,
            "delivered": self.delivered,
            "timetoken": self.timetoken,
            "dropped": self.dropped,
            "stopped_by": self.stopped_by,
            "executions": [result.to_json() for result in self.executions],
            **({"pushes": self.pushes} if self.pushes else {}),
            **({"not_triggered": self.not_triggered} if self.not_triggered else {}),
        }


class Publisher(Protocol):
    """The capability to publish through the project's functions (the bus's publish)."""

    def __call__(
        self,
        channel: str,
        message: Any,
        *,
        verb: str = "publish",
        hop: int = 1,
        meta: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
    ) -> Awaitable[PublishReport]: ...
