"""`pfunc init`: a small working project that `pfunc dev` serves and `pfunc test` proves."""

from __future__ import annotations

import contextlib
import re
from importlib import resources
from pathlib import Path

from pfunc.errors import PfuncUsageError

# Files a folder that already holds code has of its own: kept as they are, not refused.
KEPT_IF_THERE = ("README.md", ".gitignore")
# Template file -> where it goes in the new project.
FILES = {
    "pfunc.toml": "pfunc.toml",
    "messages.js": "handlers/messages.js",
    "api.js": "handlers/api.js",
    "messages.test.toml": "tests/messages.test.toml",
    "api.test.toml": "tests/api.test.toml",
    "README.md": "README.md",
    "gitignore": ".gitignore",
}


def scaffold(folder: Path) -> list[Path]:
    """Write the project into `folder` (created if needed); refuse to overwrite anything.
    A README.md or .gitignore already there (a repository's own) is kept, not refused."""
    name = re.sub(r"[^a-z0-9-]+", "-", folder.resolve().name.lower()).strip("-") or "functions"
    targets = [folder / target for target in FILES.values()]
    try:
        targets = [t for t in targets if not (t.name in KEPT_IF_THERE and t.is_file())]
        existing = [str(path) for path in targets if path.exists()]
    except OSError as error:  # a name the file system cannot hold (too long, say)
        raise PfuncUsageError(
            f"pfunc init cannot use {folder}: {error.strerror or error}"
        ) from None
    if existing:
        raise PfuncUsageError(
            "pfunc init would overwrite " + ", ".join(existing) + "; choose an empty folder"
        )
    in_the_way = _files_in_the_way(folder, targets)
    if in_the_way:
        raise PfuncUsageError(
            f"pfunc init needs {in_the_way} as a folder, and it is a file; move it, or choose "
            "another folder"
        )
    templates = resources.files("pfunc.templates")
    made: list[Path] = []  # files and folders written, undone if a later write fails
    for template, target in FILES.items():
        path = folder / target
        if path not in targets:
            continue
        text = templates.joinpath(template).read_text(encoding="utf-8")
        try:
            for parent in reversed([path.parent, *path.parent.parents]):
                if not parent.exists():
                    parent.mkdir()
                    made.append(parent)
            made.append(path)  # (before: a write cut short leaves part of a file)
            path.write_text(text.replace("{{name}}", name), encoding="utf-8")
        except OSError as error:
            _undo(made)
            raise PfuncUsageError(
                f"pfunc init cannot write {path}: {error.strerror or error}; choose a "
                "folder you can write to (nothing was written)"
            ) from None
    return targets


def _files_in_the_way(folder: Path, targets: list[Path]) -> Path | None:
    """The first file standing where a target's folder goes (`tests` a file), if any."""
    for target in targets:
        for parent in [target.parent, *target.parent.parents]:
            if parent.exists() and not parent.is_dir():
                return parent
            if parent == folder:
                break
    return None


def _undo(made: list[Path]) -> None:
    """Remove what an init that failed part-way wrote, newest first: it leaves no project
    half-made for the next `pfunc init` to refuse."""
    for path in reversed(made):
        with contextlib.suppress(OSError):  # (a folder written into since then stays)
            path.rmdir() if path.is_dir() else path.unlink()
