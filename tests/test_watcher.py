"""The dev server's file watcher: one watch per project folder, never the store's folder
(a KV write must not wake it), and folders made after start are watched too."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from pfunc.server.reload import Reloader


def test_new_folders_are_watched_and_state_folders_are_not(tmp_path: Path) -> None:
    (tmp_path / ".pfunc").mkdir()
    (tmp_path / "state").mkdir()
    (tmp_path / "node_modules" / "x").mkdir(parents=True)
    (tmp_path / "handlers").mkdir()

    async def main() -> list[set[Path]]:
        seen: list[set[Path]] = []
        changed = asyncio.Event()

        async def on_change(paths: set[Path]) -> None:
            seen.append(paths)
            changed.set()

        reloader = Reloader(
            tmp_path, asyncio.get_running_loop(), on_change, state_folder=tmp_path / "state"
        )
        reloader.start()
        try:
            watched = {p.relative_to(tmp_path.resolve()).as_posix() for p in reloader._watched}
            assert watched == {".", "handlers"}
            # A folder removed and made again (a branch switch) is watched again.
            import shutil

            shutil.rmtree(tmp_path / "handlers")
            await asyncio.sleep(0.3)
            (tmp_path / "handlers").mkdir()
            await asyncio.sleep(0.3)
            (tmp_path / "handlers" / "again.js").write_text("export default (r) => r.ok();")
            await asyncio.wait_for(changed.wait(), 10)
            changed.clear()
            (tmp_path / "state" / "kv.sqlite3-wal").write_bytes(b"x")
            (tmp_path / "later").mkdir()
            await asyncio.sleep(0.3)  # the watcher adds the new folder
            (tmp_path / "later" / "new.js").write_text("export default (r) => r.ok();")
            await asyncio.wait_for(changed.wait(), 10)
        finally:
            reloader.stop()
        return seen

    seen = asyncio.run(main())
    assert {p.name for paths in seen for p in paths} == {"again.js", "new.js"}


def test_saves_made_while_a_reload_runs_are_one_reload_after_it(tmp_path: Path) -> None:
    """A reload of every Python function takes about half a second: saves every 100 ms
    during it had queued one reload each, which fell seconds behind the files. They now
    wait, together, for the reload under way, and are read by one more."""

    async def main() -> list[set[str]]:
        reloads: list[set[str]] = []
        running, release, second = asyncio.Event(), asyncio.Event(), asyncio.Event()

        async def on_change(paths: set[Path]) -> None:
            reloads.append({p.name for p in paths})
            if len(reloads) == 1:
                running.set()
                await release.wait()  # a slow reload, until the saves below are made
            else:
                second.set()

        reloader = Reloader(tmp_path, asyncio.get_running_loop(), on_change)
        reloader._schedule({tmp_path / "first.py"})
        await asyncio.wait_for(running.wait(), 5)
        for number in range(5):  # five saves while it runs, 100 ms apart
            reloader._schedule({tmp_path / f"during{number}.py"})
            await asyncio.sleep(0.1)
        release.set()
        await asyncio.wait_for(second.wait(), 5)
        await asyncio.sleep(0.2)  # no third reload follows
        return reloads

    reloads = asyncio.run(main())
    assert reloads == [{"first.py"}, {f"during{number}.py" for number in range(5)}]


def test_a_folder_watched_for_a_function_file_outside_is_no_project_folder(
    tmp_path: Path,
) -> None:
    """A function file that is a symlink into a folder outside the project (a home or
    shared folder) has that folder watched for it alone: its other files, and folders
    made there, are not the project's (they had reloaded every Python function)."""
    project, home = tmp_path / "project", tmp_path / "home"
    project.mkdir()
    home.mkdir()
    (home / "target.js").write_text("export default (r) => r.ok();")
    (project / "linked.js").symlink_to(home / "target.js")

    async def main() -> tuple[list[str], bool]:
        seen: list[str] = []
        changed = asyncio.Event()

        async def on_change(paths: set[Path]) -> None:
            seen.extend(sorted(p.name for p in paths))
            changed.set()

        reloader = Reloader(
            project,
            asyncio.get_running_loop(),
            on_change,
            function_files=lambda: [project / "linked.js"],
        )
        reloader.start()
        try:
            (home / "unrelated.py").write_text("x = 1\n")
            (home / "tree").mkdir()
            await asyncio.sleep(0.3)
            (home / "tree" / "other.js").write_text("x")
            await asyncio.sleep(0.3)
            (home / "target.js").write_text("export default (r) => r.ok(); // saved")
            await asyncio.wait_for(changed.wait(), 10)
            await asyncio.sleep(0.3)
            watched_tree = (home / "tree").resolve() in reloader._watched
        finally:
            reloader.stop()
        return seen, watched_tree

    seen, watched_tree = asyncio.run(main())
    assert seen == ["target.js"] and not watched_tree


def test_a_functions_own_file_is_watched_whatever_its_name_or_folder(tmp_path: Path) -> None:
    """A function file named .mjs, one in a dot-folder, one that is a symlink to a file
    outside the project, and .env beside pfunc.toml: each save is reloaded and served,
    where the first three had run the first version for good, silently, and .env waited
    for a save of pfunc.toml."""
    from tests.dev_harness import InProcessDev

    project, outside = tmp_path / "project", tmp_path / "elsewhere"
    (project / ".fn").mkdir(parents=True)
    outside.mkdir()

    def answer(word: str) -> str:
        return f"export default (request, response) => response.send('{word}');\n"

    (project / "mod.mjs").write_text(answer("mjs1"))
    (project / ".fn" / "hidden.js").write_text(answer("hidden1"))
    (outside / "shared.js").write_text(answer("shared1"))
    (project / "linked.js").symlink_to(outside / "shared.js")
    (project / "secret.js").write_text(
        'const vault = require("vault");\n'
        "export default async (request, response) => response.send(await vault.get('K'));\n"
    )
    (project / ".env").write_text("K=one\n")
    functions = {"mjs": "mod.mjs", "hidden": ".fn/hidden.js", "linked": "linked.js"}
    functions["secret"] = "secret.js"
    (project / "pfunc.toml").write_text(
        '[project]\nsubscribe_key = "sub-c-w"\n'
        + "".join(
            f'[[functions]]\nname = "{name}"\nfile = "{file}"\nevent = "on-request"\n'
            f'path = "{name}"\n'
            for name, file in functions.items()
        )
    )
    server = InProcessDev(project)

    def served(name: str) -> str:
        return server.request("GET", f"/v1/blocks/sub-key/sub-c-w/{name}")[2]

    try:
        assert [served(name) for name in functions] == ["mjs1", "hidden1", "shared1", "one"]
        (project / "mod.mjs").write_text(answer("mjs2"))
        (project / ".fn" / "hidden.js").write_text(answer("hidden2"))
        (outside / "shared.js").write_text(answer("shared2"))
        (project / ".env").write_text("K=two\n")
        deadline = time.monotonic() + 10
        while [served(name) for name in functions] != ["mjs2", "hidden2", "shared2", "two"]:
            assert time.monotonic() < deadline, [served(name) for name in functions]
            time.sleep(0.1)
        # A .env saved as another encoding is a failed reload naming it (it was a server
        # error naming only UnicodeDecodeError), and the secrets stay as they were.
        (project / ".env").write_bytes(b"K=caf\xe9\n")
        failed = server.wait_for(lambda e: e.get("type") == "reload" and e.get("ok") is False)
        assert failed["error"] == f"{project / '.env'}: not UTF-8 text; save it as UTF-8"
        assert served("secret") == "two"
    finally:
        server.stop()


def test_a_function_that_cannot_load_is_named_at_start_and_when_pfunc_toml_adds_it(
    tmp_path: Path,
) -> None:
    """A handler with a syntax error was first reported when an event reached it (a
    publish aborted, "the function failed"); the ready line, and the reload line of a
    pfunc.toml that adds one, now name it with its place and code frame, compiling it
    without running it. A change of keys or kv, which a running server cannot apply,
    is said too."""
    from tests.dev_harness import InProcessDev

    (tmp_path / "bad.js").write_text("export default (request) => { request.ok(\n")
    (tmp_path / "worse.py").write_text("def handler(request):\n    return request.ok(\n")
    (tmp_path / "good.js").write_text("while (true) {}\nexport default (r) => r.ok();\n")
    project = '[project]\nsubscribe_key = "sub-c-w"\n' + "".join(
        f'[[functions]]\nname = "{name}"\nfile = "{name}.{suffix}"\nevent = "on-request"\n'
        f'path = "{name}"\n'
        for name, suffix in (("bad", "js"), ("good", "js"))
    )
    (tmp_path / "pfunc.toml").write_text(project)
    server = InProcessDev(tmp_path)
    try:
        warnings = server.ready["warnings"]
        assert len(warnings) == 1, warnings  # good.js compiles (its loop is no syntax error)
        assert warnings[0].startswith('function "bad" cannot load: SyntaxError: bad.js:')
        assert "| export default (request) => { request.ok(" in warnings[0]  # the code frame
        added = project + (
            '[[functions]]\nname = "worse"\nfile = "worse.py"\nevent = "on-request"\n'
            'path = "worse"\n'
        )
        (tmp_path / "pfunc.toml").write_text(added.replace("sub-c-w", "sub-c-new"))
        reload = server.wait_for(lambda e: e["type"] == "reload" and e["file"].endswith(".toml"))
        said = "\n".join(reload["warnings"])
        assert 'function "worse" cannot load: SyntaxError: worse.py:2:' in said, said
        assert 'function "bad" cannot load' in said
        assert "the keys or kv changed" in said
        # Put back as the server started: nothing more to restart for (the last save
        # was compared with, so it said the keys had changed again).
        (tmp_path / "pfunc.toml").write_text(added + "# back\n")
        back = server.wait_for(
            lambda e: e["type"] == "reload" and e["file"].endswith(".toml") and e is not reload
        )
        assert "the keys or kv changed" not in "\n".join(back["warnings"]), back
    finally:
        server.stop()


def test_a_folder_swapped_in_or_made_with_its_files_is_reloaded(tmp_path: Path) -> None:
    """`mv handlers handlers.old && mv next handlers` (a deploy script, a branch tool)
    sends no event for the files inside: the old code served on. Nor did a file written
    into a folder made an instant before (`mkdir -p a/b && echo ... > a/b/x.js`)."""
    from tests.dev_harness import InProcessDev

    def answer(word: str) -> str:
        return f"export default (request, response) => response.send('{word}');\n"

    (tmp_path / "handlers").mkdir()
    (tmp_path / "handlers" / "h.js").write_text(answer("old"))
    (tmp_path / "pfunc.toml").write_text(
        '[project]\nsubscribe_key = "sub-c-w"\n'
        '[[functions]]\nname = "h"\nfile = "handlers/h.js"\nevent = "on-request"\npath = "h"\n'
        '[[functions]]\nname = "later"\nfile = "a/b/later.js"\nevent = "on-request"\n'
        'path = "later"\n'
    )
    server = InProcessDev(tmp_path)

    def served(name: str) -> str:
        return server.request("GET", f"/v1/blocks/sub-key/sub-c-w/{name}")[2]

    try:
        assert served("h") == "old"
        (tmp_path / "next").mkdir()
        (tmp_path / "next" / "h.js").write_text(answer("new"))
        time.sleep(0.3)  # the new folder is watched, and its file's own events are over
        (tmp_path / "handlers").rename(tmp_path / "handlers.old")
        (tmp_path / "next").rename(tmp_path / "handlers")
        (tmp_path / "a" / "b").mkdir(parents=True)
        (tmp_path / "a" / "b" / "later.js").write_text(answer("made"))
        reloads = {}  # (the two load side by side: either may be reported first)
        while set(reloads) != {"h.js", "later.js"}:
            event = server.wait_for(lambda e: e["type"] == "reload" and "toml" not in e["file"])
            reloads[Path(event["file"]).name] = event
        assert reloads["h.js"]["ok"], reloads
        assert (served("h"), served("later")) == ("new", "made")
    finally:
        server.stop()


def test_watching_a_function_file_while_the_observer_hands_out_events_cannot_deadlock(
    tmp_path: Path,
) -> None:
    """watchdog holds its observer's lock while it hands an event to the Reloader (which
    takes its own to keep the watch table); the loop thread, after a reload, took the
    Reloader's first and then the observer's to watch a function file's folder. Each
    waited for the other for good, and the dev server's loop froze."""
    import threading

    root, extra = tmp_path / "project", tmp_path / "extra"
    (root / "sub").mkdir(parents=True)
    extra.mkdir()
    files: list[Path] = []
    loop = asyncio.new_event_loop()

    async def on_change(paths: set[Path]) -> None:
        return None

    reloader = Reloader(root, loop, on_change, function_files=lambda: list(files))
    reloader.start()
    try:
        (extra / "fn.js").write_text("export default (r) => r.ok();")
        files.append(extra / "fn.js")  # pfunc.toml now names a file outside the project
        handing_out = threading.Event()

        def dispatching() -> None:  # as watchdog's thread: its lock held, an event handled
            with reloader._observer._lock:
                handing_out.set()
                time.sleep(0.2)
                reloader._watch(root / "sub")

        dispatcher = threading.Thread(target=dispatching, daemon=True)
        dispatcher.start()
        handing_out.wait()
        after_reload = threading.Thread(target=reloader._watch_function_files, daemon=True)
        after_reload.start()
        dispatcher.join(10)
        after_reload.join(10)
        assert not dispatcher.is_alive() and not after_reload.is_alive(), "deadlocked"
        assert (extra.resolve() in reloader._watched) or (extra in reloader._watched)
    finally:
        reloader.stop()
        loop.close()


def test_a_pfunc_toml_save_keeps_the_timers_of_interval_functions_it_left_alone(
    tmp_path: Path,
) -> None:
    """Every save of pfunc.toml restarted every interval timer, so a function whose
    schedule had not changed skipped a run; now only a changed schedule restarts."""
    from tests.dev_harness import InProcessDev, make_ticking_project

    make_ticking_project(tmp_path)
    server = InProcessDev(tmp_path, intervals=True)
    try:
        timers = server.server._interval_tasks
        (tick,) = [task for key, task in timers.items() if key[0] == "tick"]
        with (tmp_path / "pfunc.toml").open("a") as config:  # another function is added
            config.write(
                '\n[[functions]]\nname = "more"\nfile = "tick.js"\nevent = "on-request"\n'
                'path = "more"\n'
            )
        server.wait_for(lambda e: e["type"] == "reload" and e["file"].endswith("pfunc.toml"))
        (kept,) = [task for key, task in timers.items() if key[0] == "tick"]
        assert kept is tick and not tick.done()
        text = (tmp_path / "pfunc.toml").read_text().replace("interval = 1\n", "interval = 2\n")
        (tmp_path / "pfunc.toml").write_text(text)  # its own schedule changed: a new timer
        server.wait_for(lambda e: e["type"] == "reload" and e["file"].endswith("pfunc.toml"))
        (changed,) = [task for key, task in timers.items() if key[0] == "tick"]
        assert changed is not tick and key_interval(timers, "tick") == 2
    finally:
        server.stop()


def key_interval(timers: dict, name: str) -> int:
    return next(key[3] for key in timers if key[0] == name)


def test_the_watchers_own_stop_race_is_not_printed(tmp_path: Path, caplog) -> None:
    """watchdog logs an event read as its thread ends at ERROR, which Python printed on
    pfunc dev's terminal under a Ctrl-C now and then; its other errors still show."""
    import logging

    async def main() -> None:
        async def on_change(paths: set[Path]) -> None:
            pass

        reloader = Reloader(tmp_path, asyncio.get_running_loop(), on_change)
        reloader.start()
        reloader.stop()

    asyncio.run(main())
    logger = logging.getLogger("watchdog.observers.inotify")
    with caplog.at_level(logging.ERROR, logger=logger.name):
        logger.error("InotifyEmitter.queue_events() called when the thread is inactive")
        logger.error("another of watchdog's errors")
    assert caplog.messages == ["another of watchdog's errors"]


def test_a_pfunc_toml_save_lets_an_interval_execution_in_flight_finish(
    tmp_path: Path, gate
) -> None:
    """A save that changed a function's schedule cancelled the timer's task, and with it
    the execution it was awaiting (here an xhr call held open by the test): the run ended
    half-way, with no log line. The new schedule now starts while the run in flight ends,
    and is logged, as any."""
    from tests.dev_harness import InProcessDev, make_project

    make_project(tmp_path)
    config = (tmp_path / "pfunc.toml").read_text()
    (tmp_path / "pfunc.toml").write_text(config.replace("timeout = 1\n", "timeout = 10\n"))
    (tmp_path / "slow.js").write_text(
        'const db = require("kvstore"); const xhr = require("xhr");\n'
        "export default async (event) => {\n"
        '  const run = await db.incrCounter("runs");\n'
        f'  if (run === 1) await xhr.fetch("{gate.url}");\n'
        '  console.log("run " + run);\n'
        "  return event.ok();\n"
        "};\n"
    )
    with (tmp_path / "pfunc.toml").open("a") as config_file:
        config_file.write(
            '\n[[functions]]\nname = "slow"\nfile = "slow.js"\nevent = "on-interval"\n'
            "interval = 1\n"
        )
    server = InProcessDev(tmp_path, intervals=True)
    try:
        assert gate.reached.wait(10)  # the first run waits on the gate
        text = (tmp_path / "pfunc.toml").read_text().replace("interval = 1\n", "interval = 2\n")
        (tmp_path / "pfunc.toml").write_text(text)
        server.wait_for(lambda e: e["type"] == "reload" and e["file"].endswith("pfunc.toml"))
        gate.opened.set()  # saved while it waited: now let it end
        first = server.wait_for(
            lambda e: (
                e["type"] == "execution" and any("run 1" in str(line) for line in e.get("logs", []))
            ),
            timeout=10,
        )
        assert first["outcome"] == "ok"
    finally:
        server.stop()


def test_a_load_that_runs_long_holds_no_other_and_is_said(tmp_path: Path, monkeypatch) -> None:
    """Saved together, a handler whose top-level code loops and a fixed one: the fixed one
    waited the whole time limit (functions loaded one after another), and nothing was
    said meanwhile. Each loads at once now, and a load still running is said to be."""
    from pfunc.server import reload
    from tests.dev_harness import InProcessDev

    monkeypatch.setattr(reload, "SLOW_LOAD_SECONDS", 0.3, raising=False)
    (tmp_path / "pfunc.toml").write_text(
        '[project]\nsubscribe_key = "sub-c-w"\n\n[limits]\ntimeout = 1.5\n'
        + "".join(
            f'[[functions]]\nname = "{name}"\nfile = "{name}.js"\nevent = "on-request"\n'
            f'path = "{name}"\n'
            for name in ("a", "b")
        )
    )
    for name in ("a", "b"):
        (tmp_path / f"{name}.js").write_text(f'export default (q, r) => r.send("{name}1");\n')
    server = InProcessDev(tmp_path)
    try:
        (tmp_path / "a.js").write_text('for (;;) {}\nexport default (q, r) => r.send("a2");\n')
        (tmp_path / "b.js").write_text('export default (q, r) => r.send("b2");\n')
        seen = []
        while not any(e.get("type") == "reload" and "a.js" in e["file"] for e in seen):
            seen.append(server.wait_for(lambda e: e["type"].startswith("reload"), timeout=10))
        kinds = [(e["type"], Path(e["file"]).name, e.get("ok")) for e in seen]
        assert kinds == [
            ("reload", "b.js", True),  # at once, not after a.js's time limit
            ("reload-slow", "a.js", None),
            ("reload", "a.js", False),
        ], kinds
        assert server.request("GET", "/v1/blocks/sub-key/sub-c-w/b")[2] == "b2"
        assert server.request("GET", "/v1/blocks/sub-key/sub-c-w/a")[2] == "a1"
    finally:
        server.stop()
