"""The nearest peer, measured rather than quoted (`bench/run.py --compare`): Miniflare
(Cloudflare's local Workers runtime, workerd underneath) serving the equivalent Worker,
an on-request handler with one KV read. Installed with npm into a cache folder on first
use (PFUNC_BENCH_CACHE, default ~/.cache/pfunc-bench)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

VERSION = "4"
SERVE = """
import { Miniflare } from "miniflare";
const started = Date.now();
const mf = new Miniflare({
  modules: true,
  script: `export default { async fetch(request, env) {
    const n = Number(await env.KV.get("hits")) || 0;
    return new Response(JSON.stringify({ n }), { headers: { "content-type": "application/json" } });
  } };`,
  kvNamespaces: ["KV"],
  port: 0,
});
const url = await mf.ready;
console.log(JSON.stringify({ url: url.href, ready_ms: Date.now() - started }));
process.stdin.resume();
process.stdin.on("end", async () => { await mf.dispose(); process.exit(0); });
"""


class Unavailable(Exception):
    """npm or the package cannot be had here; the message says which."""


def install() -> Path:
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        raise Unavailable("Node.js and npm are needed for --compare")
    cache = Path(os.environ.get("PFUNC_BENCH_CACHE", Path.home() / ".cache" / "pfunc-bench"))
    folder = cache / f"miniflare-{VERSION}"
    if not (folder / "node_modules" / "miniflare").is_dir():
        folder.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            [
                npm,
                "install",
                "--no-audit",
                "--no-fund",
                "--silent",
                "--prefix",
                str(folder),
                f"miniflare@{VERSION}",
            ],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if done.returncode != 0:
            raise Unavailable(f"npm could not install miniflare: {done.stderr[-300:]}")
    (folder / "serve.mjs").write_text(SERVE)
    return folder


class Miniflare:
    """Miniflare serving the Worker until stopped; `url`, and `ready_ms` from start."""

    def __init__(self) -> None:
        folder = install()
        started = time.perf_counter()
        self.process = subprocess.Popen(
            ["node", "serve.mjs"],
            cwd=folder,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        ready = json.loads(self.process.stdout.readline())
        self.url = ready["url"]
        self.start_seconds = time.perf_counter() - started

    def stop(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
