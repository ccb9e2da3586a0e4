"""`pfunc dev --json` in a process of its own, for the benchmarks that drive one."""

from __future__ import annotations

import json
import subprocess
import sys
import threading


def start_server(folder: str) -> tuple[subprocess.Popen[str], str]:
    """The dev server serving the project in `folder` on a free port, and its base URL."""
    server = subprocess.Popen(
        [sys.executable, "-m", "pfunc", "dev", "--port", "0", "--json", "--no-intervals"],
        cwd=folder,
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    assert server.stdout is not None
    for line in server.stdout:
        event = json.loads(line)
        if event["type"] == "ready":
            base = f"http://127.0.0.1:{event['port']}"
            break
    # The log keeps printing a line per execution: read it, or the pipe fills and stalls.
    threading.Thread(target=lambda: [None for _ in server.stdout], daemon=True).start()
    return server, base
