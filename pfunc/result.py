"""The one Result every execution produces, and its JSON form (REFERENCE section 7)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pfunc.bus import PublishReport

OUTCOMES = ("ok", "abort", "response", "error")


@dataclass
class ExecutionError:
    type: str
    message: str
    stack: str = ""
    file: str | None = None
    line: int | None = None
    column: int | None = None
    code: str | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"type": self.type, "message": self.message, "stack": self.stack}
        if self.file is not None:
            data.update(file=self.file, line=self.line, column=self.column)
        if self.code is not None:
            data["code"] = self.code
        return data


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

    @property
    def is_message_event(self) -> bool:
        return self.family == "message"

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "function": self.function,
            "name": self.name,
            "event": self.event,
            "outcome": self.outcome,
        }
        if self.is_message_event:
            data["channel"] = self.channel
            data["hop"] = self.hop
            data["message"] = self.message
            data["delivered"] = self.delivered
        elif self.family == "request":
            data["response"] = self.response
        if self.outcome == "abort":
            data["abort_reason"] = self.abort_reason
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
