"""`pfunc init`: a small working project that `pfunc dev` serves and `pfunc test` proves."""

from __future__ import annotations

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
    templates = resources.files("pfunc.templates")
    for template, target in FILES.items():
        path = folder / target
        if path not in targets:
            continue
        text = templates.joinpath(template).read_text(encoding="utf-8")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text.replace("{{name}}", name), encoding="utf-8")
        except OSError as error:
            raise PfuncUsageError(
                f"pfunc init cannot write {path}: {error.strerror or error}; choose a "
                "folder you can write to"
            ) from None
    return targets
