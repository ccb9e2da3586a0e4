"""The dev server's file watcher: one watch per project folder, never the store's folder
(a KV write must not wake it), and folders made after start are watched too."""

from __future__ import annotations

import asyncio
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
        running = asyncio.Event()

        async def on_change(paths: set[Path]) -> None:
            reloads.append({p.name for p in paths})
            running.set()
            await asyncio.sleep(0.6)  # a slow reload

        reloader = Reloader(tmp_path, asyncio.get_running_loop(), on_change)
        reloader._schedule({tmp_path / "first.py"})
        await asyncio.wait_for(running.wait(), 5)
        for number in range(5):  # five saves while it runs, 100 ms apart
            reloader._schedule({tmp_path / f"during{number}.py"})
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.5)  # the reload under way ends, then the one after it
        return reloads

    reloads = asyncio.run(main())
    assert reloads == [{"first.py"}, {f"during{number}.py" for number in range(5)}]
