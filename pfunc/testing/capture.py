"""Turn one execution seen by `pfunc dev` into a scenario that `pfunc test` passes at once
(the console's "save as scenario", and `pfunc dev --record`).

The scenario replays the event with the clock at the execution's start and the KV values
the execution found seeded, and expects what was observed: the outcome, the message or
response, the operations used, the error. Before it is written it is run (as `pfunc test`
runs it): the KV changes expected are the ones that run makes, and any expectation the
replay does not repeat (a value made from the time within the execution, randomness) is
dropped, and named, so that the file passes as written.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pfunc.engine import Engine
from pfunc.errors import PfuncUsageError
from pfunc.events import FILE, KINDS
from pfunc.file_messages import is_file_message
from pfunc.result import UNSEEN_KV
from pfunc.testing import toml_text
from pfunc.testing.runner import run_scenario
from pfunc.testing.scenario import load_scenarios

KV_WRITES = {"set", "setItem", "removeItem", "incrCounter"}
DROPPED_HEADERS = {"host", "content-length", "connection", "accept-encoding"}
ATTEMPTS = 4  # runs to settle the expectations (each may drop what did not repeat)
_PROBES = itertools.count()  # each replay's probe file its own


SAVED_SINCE = (
    "a file of the project was saved after it ran, and a replay reads the files as they "
    "are now; send it again to record it"
)


class CaptureError(PfuncUsageError):
    """This execution cannot become a scenario (says why)."""


@dataclass
class Captured:
    path: Path
    name: str
    relaxed: list[str] = field(default_factory=list)  # expectations dropped, and why
    text: str = ""


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


def _step_event(event: dict[str, Any]) -> tuple[str, Any]:
    """The step's event table: its trigger word and payload."""
    row = KINDS[event["kind"]]
    if row.family == "interval":
        return "interval", True
    if row.family == "request":
        payload: dict[str, Any] = {"method": event["method"], "path": event["path"]}
        if event.get("query"):
            payload["query"] = event["query"]
        headers = {
            name: text
            for name, text in (event.get("headers") or {}).items()
            if name.lower() not in DROPPED_HEADERS
        }
        if headers:
            payload["headers"] = headers
        if event.get("body"):
            payload["body"] = event["body"]
        return "request", payload
    message = event["message"]
    if row.trigger == FILE and not is_file_message(message):
        # An SDK's encrypted file message is one text; a scenario's publish-file message
        # is made the text of a file message (as_file_message), another event.
        raise CaptureError(
            "a file message that is not {message, file} (an encrypted one) cannot be "
            "replayed by a scenario: its publish-file message is the text of a file message"
        )
    payload = {"message": message, "channel": event["channel"]}
    for extra in ("params", "meta"):
        if event.get(extra):
            payload[extra] = event[extra]
    return row.trigger, payload


def _expectations(result: dict[str, Any]) -> dict[str, Any]:
    expect: dict[str, Any] = {"outcome": result["outcome"]}
    if result["outcome"] == "abort" and result.get("abort_reason") is not None:
        expect["abort_reason"] = result["abort_reason"]
    if "message" in result and result["outcome"] == "ok":
        expect["message"] = result["message"]
    response = result.get("response")
    if response:
        expect["status"] = response["status"]
        if response.get("headers"):
            expect["headers"] = response["headers"]
        try:
            expect["json"] = json.loads(response.get("body") or "")
        except ValueError:
            expect["body"] = response.get("body", "")
    if result.get("error"):
        expect["error"] = {"type": result["error"]["type"], "message": result["error"]["message"]}
    expect["operations"] = result["operations"].get("used", 0)
    cleaned = {}
    for name, wanted in expect.items():
        kept = toml_text.without_nulls(wanted)
        if not toml_text.dropped(kept):
            cleaned[name] = kept
    return cleaned


def scenario_for(entry: dict[str, Any], name: str) -> dict[str, Any]:
    """The scenario (as the TOML data) for one console entry (see ConsoleHub.Entry)."""
    result, event = entry["result"], entry.get("event")
    if event is None or not result.get("name"):
        raise CaptureError("only executions of functions named in pfunc.toml can be saved")
    if (entry.get("observed") or {}).get(UNSEEN_KV):
        raise CaptureError(
            "it used the KV store while no console page was open (nor --record), so what "
            "it found there was not noted; send it again with this page open to save it"
        )
    trigger, payload = _step_event(event)
    kv, counters = {}, {}
    for slot, found in (entry.get("observed") or {}).items():
        space, _, key = slot.partition(":")
        if space == "item" and found is not None:
            kv[key] = found
        elif space == "counter" and found:
            counters[key] = found
    started = int(entry["at"] - (result.get("duration_ms") or 0))
    scenario: dict[str, Any] = {"name": name, "function": result["name"], "now": _iso(started)}
    if kv:
        scenario["kv"] = kv
    if counters:
        scenario["counters"] = counters
    scenario["step"] = {trigger: payload, "expect": _expectations(result)}
    scenario["_writes"] = sorted(
        {
            (call["method"], call["key"])
            for call in result["operations"].get("calls", [])
            if call.get("module") == "kvstore"
            and call.get("method") in KV_WRITES
            and call.get("status") == "ok"
            and "key" in call
        }
    )
    return scenario


def render(scenario: dict[str, Any]) -> str:
    try:
        lines = ["[[scenario]]"]
        for name in ("name", "function", "now", "kv", "counters"):
            if name in scenario:
                lines.append(f"{name} = {toml_text.value(scenario[name], name)}")
        lines += ["", "[[scenario.step]]"]
        for name, data in scenario["step"].items():
            lines.append(f"{toml_text.key(name)} = {toml_text.value(data, name)}")
    except toml_text.NotTOML as error:
        raise CaptureError(f"this execution cannot be written as a scenario: {error}") from None
    return "\n".join(lines) + "\n"


def _relax(expect: dict[str, Any], field_path: str) -> bool:
    """Drop the expectation a mismatch names (the nearest field that can go)."""
    top, _, rest = field_path.partition(".")
    if top in ("kv", "counters"):
        table = expect.get(top, {})
        table.pop(rest, None)
        if not table:
            expect.pop(top, None)
        return True
    if top in ("outcome", "step") or top not in expect:
        return False  # the execution itself does not repeat: nothing to keep
    parts = rest.split("[")[0].split(".") if rest else []
    holder: Any = expect
    name = top
    for part in parts:
        if not isinstance(holder.get(name), dict) or part not in holder[name]:
            break
        holder, name = holder[name], part
    holder.pop(name, None)
    if top != name and not expect.get(top):
        expect.pop(top, None)
    return True


def _unwritable(target: Path, error: OSError) -> CaptureError:
    return CaptureError(f"{target}: cannot write it: {error.strerror or error}")


def _names_in(target: Path) -> set[str]:
    """The scenario names a file holds already (none when it is not there, or unreadable:
    pfunc test says what is wrong with it)."""
    try:
        return {scenario.name for scenario in load_scenarios(target)}
    except PfuncUsageError:
        return set()


async def capture(
    entry: dict[str, Any],
    target: Path,
    name: str,
    unchanged: Callable[[], bool] = lambda: True,
) -> Captured:
    """Append the scenario for `entry` to `target` once a run has shown that it passes.
    `unchanged`: whether the project's files are still those it ran (the replay reads
    them as they are now: a save since would make it replay other code)."""
    scenario = scenario_for(entry, name)
    writes = scenario.pop("_writes")
    relaxed: list[str] = []
    after: dict[str, Any] = {}
    # (one of its own: the console's save and --record may replay at once)
    probe = target.with_name(f".{target.name}.{os.getpid()}.{next(_PROBES)}.probe.test.toml")

    async def inspect(engine: Engine) -> None:
        store, keyset = engine.runtime.store, engine.runtime.keyset.subscribe_key
        now = engine.runtime.clock.now_ms()
        for method, key in writes:
            if method == "incrCounter":
                after[f"counters.{key}"] = await store.get_counter(keyset, key)
            else:
                text = await store.get_item(keyset, key, now)
                after[f"kv.{key}"] = "absent" if text is None else json.loads(text)

    expect = scenario["step"]["expect"]
    if not unchanged():
        raise CaptureError(SAVED_SINCE)
    if name in _names_in(target):  # a second one of a name would stop the whole file
        raise CaptureError(f'{target.name} already has a scenario named "{name}"')
    try:
        if target.exists() and not target.is_file():  # a folder, say: found before the replay
            raise IsADirectoryError(0, "it is not a file")
        target.parent.mkdir(parents=True, exist_ok=True)
        probe.touch()
    except OSError as error:
        raise _unwritable(target, error) from None
    try:
        for attempt in range(ATTEMPTS):
            text = render(scenario)
            probe.write_text(text, encoding="utf-8")
            outcome = await run_scenario(load_scenarios(probe)[0], inspect, warm=False)
            mismatches = outcome.failure.mismatches if outcome.failure else []
            for mismatch in mismatches:
                if not _relax(expect, mismatch.field):
                    raise CaptureError(
                        f"replaying this execution does not repeat it ({mismatch.describe()}); "
                        "it cannot be saved as a scenario"
                    )
                relaxed.append(f"{mismatch.field}: {mismatch.describe()}")
            added = attempt == 0 and bool(after)
            if added:
                for slot, value in after.items():
                    space, _, key = slot.partition(".")
                    kept = toml_text.without_nulls(value)
                    if not toml_text.dropped(kept):
                        expect.setdefault(space, {})[key] = kept
            if not mismatches and not added:
                break
        else:
            raise CaptureError("this execution's replay did not settle; it was not saved")
    finally:
        with contextlib.suppress(OSError):
            probe.unlink()
    if not unchanged():  # saved during the replay: what it checked may be the new code
        raise CaptureError(SAVED_SINCE)
    if relaxed:
        text = "".join(f"# not expected (the replay differed): {note}\n" for note in relaxed) + text
    header = "" if target.exists() else "# Scenarios saved from pfunc dev: pfunc test runs them.\n"
    try:
        with target.open("a", encoding="utf-8") as out:
            out.write(header + "\n" + text)
    except OSError as error:  # (a full disk, or the file made a folder during the replay)
        raise _unwritable(target, error) from None
    return Captured(target, name, relaxed, text)
