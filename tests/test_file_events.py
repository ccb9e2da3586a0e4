"""Files without a server: the engine's Files API (what the `pubnub` module of functions
will call), the before-publish-file and after-publish-file kinds through the bus and
`pfunc run --event`, and `pfunc send-file`."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from pfunc.events import KINDS
from pfunc.files import MAX_FILE_BYTES, FileTooLarge
from tests.conftest import REPO, invoke_cli


def run_cli(*args, cwd=None, stdin=None):  # the commands' answers: in this process
    return invoke_cli(*args, cwd=cwd or REPO, stdin=stdin)


PROJECT = """
[project]
subscribe_key = "sub-c-ev"
publish_key = "pub-c-ev"

[[functions]]
name = "vet"
file = "vet.js"
event = "before-publish-file"
channels = ["docs"]

[[functions]]
name = "audit"
file = "audit.js"
event = "after-publish-file"
channels = ["docs"]
"""
VET = """
export default (request) => {
  const text = request.message.message;
  if (text === "secret") return request.abort("no secrets");
  if (text === "swap") return request.ok({ message: "swapped", file: { id: "x", name: "y" } });
  if (text === "plain") return request.ok("just text");
  if (text === "object") return request.ok({ replaced: true });
  request.message.message = `${text} (${request.verb}, ${request.message.file.name})`;
  return request.ok();
};
"""
AUDIT = """
const db = require("kvstore");
export default async (request) => {
  await db.set("last", request.message);
  return request.ok();
};
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "pfunc.toml").write_text(PROJECT)
    (tmp_path / "vet.js").write_text(VET)
    (tmp_path / "audit.js").write_text(AUDIT)
    return tmp_path


def test_both_kinds_are_in_the_table_as_message_kinds_of_the_file_trigger():
    before, after = KINDS["before-publish-file"], KINDS["after-publish-file"]
    assert (before.family, before.trigger, before.phase) == ("message", "publish-file", "before")
    assert (after.family, after.trigger, after.phase) == ("message", "publish-file", "after")


def test_the_files_api_keeps_lists_reads_and_deletes(harness, tmp_path):
    async def go() -> None:
        async with harness.engine() as engine:
            files = engine.files
            added = [await files.add("docs", f"n{i}.txt", b"x" * i, "text/plain") for i in (1, 2)]
            assert (tmp_path / "files" / added[0].id).read_bytes() == b"x"
            assert await files.read("docs", added[1].id, "n2.txt") == b"xx"
            assert await files.read("docs", added[1].id, "other.txt") is None  # name must match
            assert await files.read("elsewhere", added[1].id, "n2.txt") is None
            page, after = await files.list_files("docs", limit=1)
            rest, last = await files.list_files("docs", limit=1, next=after)
            assert [f.id for f in page + rest] == sorted(f.id for f in added) and last is None
            assert page[0].to_json()["created"] == "2026-01-01T00:00:00Z"
            assert files.file_url("docs", added[0].id, "n 1.txt").endswith(
                f"/v1/files/sub-c-local/channels/docs/files/{added[0].id}/n%201.txt"
            )
            assert await files.delete_file("docs", added[0].id, "n1.txt")
            assert not (tmp_path / "files" / added[0].id).exists()
            assert not await files.delete_file("docs", added[0].id, "n1.txt")

    asyncio.run(go())


def test_the_5_mb_limit_and_hostile_names(harness, tmp_path):
    async def go() -> None:
        async with harness.engine() as engine:
            files = engine.files
            assert (await files.add("docs", "max.bin", b"\0" * MAX_FILE_BYTES)).size == (
                MAX_FILE_BYTES
            )
            with pytest.raises(FileTooLarge):
                await files.add("docs", "over.bin", b"\0" * (MAX_FILE_BYTES + 1))
            for channel, name in [("docs", "../kv.sqlite3"), ("docs", "a\\b"), ("a*", "f")]:
                with pytest.raises(ValueError):
                    await files.add(channel, name, b"x")
            with pytest.raises(ValueError):
                files.path_of("../kv.sqlite3")
            listed, _ = await files.list_files("docs")
            assert [f.name for f in listed] == ["max.bin"]
            assert sorted(p.name for p in (tmp_path / "files").iterdir()) == [listed[0].id]

    asyncio.run(go())


def test_file_messages_go_through_the_file_functions_and_keep_their_file(harness, project):
    harness.use_project(PROJECT, project)

    async def go() -> list:
        async with harness.engine() as engine:
            files = engine.files
            reports = [
                await files.publish_file("docs", text, "id-1", "a.txt")
                for text in ("hello", "secret", "swap", "plain", "object")
            ]
            stored = await engine.history.read("docs", count=10, now_ms=harness.clock.now_ms())
            last = await engine.runtime.store.get_item(
                engine.runtime.keyset.subscribe_key, "last", harness.clock.now_ms() + 1
            )
            return [reports, stored, json.loads(last)]

    reports, stored, last = asyncio.run(go())
    hello, secret, swap, plain, replaced = reports
    assert hello.verb == "publish-file" and hello.delivered
    assert hello.message == {
        "message": "hello (publish, a.txt)",
        "file": {"id": "id-1", "name": "a.txt"},
    }
    assert [e.event for e in hello.executions] == ["before-publish-file", "after-publish-file"]
    assert not secret.delivered and secret.stopped_by == "vet"
    assert secret.executions[0].abort_reason == "no secrets"
    # A function changes the text, never which file the message is about.
    assert swap.message == {"message": "swapped", "file": {"id": "id-1", "name": "a.txt"}}
    assert plain.message == {"message": "just text", "file": {"id": "id-1", "name": "a.txt"}}
    # An object without a file message's keys is the text too, as subscribers see it.
    assert replaced.message == {
        "message": {"replaced": True},
        "file": {"id": "id-1", "name": "a.txt"},
    }
    assert not replaced.executions[0].warnings
    # ... and says so where it tried, not where it only changed the text
    assert any("stays the uploaded one" in w for w in swap.executions[0].warnings)
    assert not plain.executions[0].warnings and not hello.executions[0].warnings
    assert [s.message_type for s in stored] == [4, 4, 4, 4]
    assert last == replaced.message


def test_pfunc_run_with_the_file_kinds(project):
    default = run_cli("run", "vet.js", "--event", "before-publish-file", "--json", cwd=project)
    assert default.code == 0, default.stderr
    message = default.json()["message"]
    assert message["message"] == "null (publish, file.txt)"
    assert set(message["file"]) == {"id", "name"}
    text = run_cli(
        "run", "vet", "--message", '"hi"', "--channel", "docs", "--json", cwd=project
    ).json()
    assert text["message"]["message"] == "hi (publish, file.txt)"
    given = '{"message": "secret", "file": {"id": "i", "name": "n.txt"}}'
    aborted = run_cli("run", "vet", "--message", given, "--json", cwd=project).json()
    assert aborted["outcome"] == "abort"
    # pfunc run reports what pfunc dev and send-file deliver: the file stays, and is said.
    given = '{"message": "swap", "file": {"id": "i", "name": "n.txt"}}'
    swapped = run_cli("run", "vet", "--message", given, "--json", cwd=project).json()
    assert swapped["message"] == {"message": "swapped", "file": {"id": "i", "name": "n.txt"}}
    assert any("stays the uploaded one" in warning for warning in swapped["warnings"])
    (project / "drop.js").write_text(
        "export default (r) => { delete r.message.file; return r.ok(); };"
    )
    dropped = run_cli(
        "run", "drop.js", "--event", "before-publish-file", "--message", given, cwd=project
    )
    assert '"file"' in dropped.stdout and "stays the uploaded one" in dropped.stdout
    after = run_cli("run", "audit.js", "--event", "after-publish-file", cwd=project)
    assert after.code == 0 and "after-publish-file" in after.stdout


def test_pfunc_send_file(project):
    (project / "report.txt").write_text("numbers")
    sent = run_cli("send-file", "docs", "report.txt", "--message", '"q3"', "--json", cwd=project)
    assert sent.code == 0, sent.stderr
    report = sent.json()
    assert report["verb"] == "publish-file" and report["delivered"]
    assert report["message"]["message"] == "q3 (publish, report.txt)"
    stored = project / ".pfunc" / "files" / report["message"]["file"]["id"]
    assert stored.read_text() == "numbers"
    shown = run_cli("send-file", "docs", "report.txt", "--message", '"secret"', cwd=project)
    assert shown.code == 0 and "stopped by vet" in shown.stdout


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["docs", "missing.txt"], "missing.txt: no such file"),
        (["docs", "."], "it is a folder"),
        (["do*cs", "report.txt"], "channel 'do*cs'"),
        (["docs", "report.txt", "--message", "{oops"], "--message is not valid JSON"),
        (["docs", "big.bin"], "PubNub's limit on a file is 5,242,880 bytes"),
    ],
)
def test_pfunc_send_file_refuses_bad_input_in_one_line(project, args, fragment):
    (project / "report.txt").write_text("numbers")
    with open(project / "big.bin", "wb") as big:
        big.truncate(MAX_FILE_BYTES + 1)
    refused = run_cli("send-file", *args, cwd=project)
    assert refused.code == 2
    assert fragment in refused.stderr and refused.stdout == ""
    assert len(refused.stderr.strip().splitlines()) <= 2  # the --message hint may add one
