"""Hot reload under load: 8 clients call a 130 KB handler while it is rewritten 30 times in
place (slowly, in two writes) and 30 times by rename, in JavaScript and in Python.

No answer may come from a half-written file, no request may get an older version than
one already answered before it started, and the last version serves once reloaded.
(How fast the last save serves is measured by bench/run.py, not here.)"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from tests.dev_harness import InProcessDev

CLIENTS = 8
SAVES_EACH_WAY = 30
PADDING = 130 * 1024


def source(language: str, version: int) -> str:
    """A handler that answers its version; both ends of the file carry it, so a file cut
    short cannot answer a version at all."""
    if language == "js":
        head = f'const HEAD = "v{version}";\n'
        pad = "// " + "x" * 76 + "\n"
        tail = (
            f'const TAIL = "v{version}";\n'
            "export default (request, response) =>\n"
            '  response.send(HEAD === TAIL ? HEAD : "half-written");\n'
        )
    else:
        head = f'HEAD = "v{version}"\n'
        pad = "# " + "x" * 77 + "\n"
        tail = (
            f'TAIL = "v{version}"\n\n'
            "def handler(request, response):\n"
            '    return response.send(HEAD if HEAD == TAIL else "half-written")\n'
        )
    return head + pad * (PADDING // len(pad)) + tail


def save_in_place(path: Path, text: str) -> None:
    """An editor that truncates, writes half, pauses, then writes the rest."""
    data = text.encode()
    with open(path, "r+b") as handle:
        handle.truncate(0)
        handle.write(data[: len(data) // 2])
        handle.flush()
        os.fsync(handle.fileno())
        time.sleep(0.01)
        handle.write(data[len(data) // 2 :])


def save_by_rename(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.swp")
    temporary.write_text(text)
    os.replace(temporary, path)


@pytest.mark.parametrize("language", ["js", "py"])
def test_reload_under_load_serves_only_whole_files_in_order(tmp_path, language):
    handler = tmp_path / f"v.{language}"
    handler.write_text(source(language, 0))
    (tmp_path / "pfunc.toml").write_text(
        '[project]\nsubscribe_key = "sub-c-r"\n'
        f'[[functions]]\nname = "v"\nfile = "v.{language}"\nevent = "on-request"\npath = "v"\n'
    )
    server = InProcessDev(tmp_path)
    answers: list[tuple[float, float, int, str]] = []  # (started, ended, status, body)
    lock = threading.Lock()
    stop = threading.Event()

    def client() -> None:
        while not stop.is_set():
            started = time.monotonic()
            status, _, body = server.request("GET", "/v1/blocks/sub-key/sub-c-r/v")
            with lock:
                answers.append((started, time.monotonic(), status, body))

    clients = [threading.Thread(target=client) for _ in range(CLIENTS)]
    try:
        for thread in clients:
            thread.start()
        last = 0
        for number in range(1, 2 * SAVES_EACH_WAY + 1):
            save = save_in_place if number <= SAVES_EACH_WAY else save_by_rename
            save(handler, source(language, number))
            last = number
            time.sleep(0.04)
        # The last save serves once its reload is reported.
        server.wait_for(
            lambda e: e["type"] == "reload" and e["ok"] and e["file"].endswith(f"v.{language}"),
            timeout=10,
        )
        final = ""
        deadline = time.monotonic() + 5
        while final != f"v{last}" and time.monotonic() < deadline:
            final = server.request("GET", "/v1/blocks/sub-key/sub-c-r/v")[2]
    finally:
        stop.set()
        for thread in clients:
            thread.join(10)
        server.stop()

    assert len(answers) > 100
    assert {status for _, _, status, _ in answers} == {200}, [
        b for _, _, s, b in answers if s != 200
    ][:3]
    assert all(body.startswith("v") for _, _, _, body in answers), "a half-written file answered"
    # No request got an older version than one answered before it started.
    by_end = sorted(answers, key=lambda answer: answer[1])
    stale = []
    best, index = -1, 0
    for started, _, _, body in sorted(answers, key=lambda answer: answer[0]):
        while index < len(by_end) and by_end[index][1] < started:
            best = max(best, int(by_end[index][3][1:]))
            index += 1
        if int(body[1:]) < best:
            stale.append((int(body[1:]), best))
    assert stale == []
    assert final == f"v{last}"
