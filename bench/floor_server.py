"""The dev server's floor: aiohttp serving the same two routes as the benchmark's `pfunc
dev` (an on-request handler with one KV call, a publish through the 3-operation rate
limiter), the handler run in line on bare QuickJS and raw sqlite3: no budget, no
validation, no log, no thread.

    python bench/floor_server.py FOLDER   (prints its port, then serves until killed)
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

from aiohttp import web

sys.path.insert(0, str(Path(__file__).parent))
from floor import FloorHandler

REPO = Path(__file__).resolve().parent.parent


async def serve(folder: Path) -> None:
    hits = FloorHandler(folder / "hits.js", folder / "floor-hits.sqlite3")
    limiter = FloorHandler(REPO / "examples" / "rate_limit.js", folder / "floor-rl.sqlite3")

    async def on_request(request: web.Request) -> web.Response:
        body = hits.run({"method": "GET", "path": "/", "query": dict(request.query)})
        return web.Response(text=body, content_type="application/json")

    async def publish(request: web.Request) -> web.Response:
        message = json.loads(request.match_info["message"])
        outcome = limiter.run({"message": message, "channels": [request.match_info["channel"]]})
        if outcome == "abort":
            return web.json_response([0, "aborted", "0"], status=403)
        return web.json_response([1, "Sent", str(time.time_ns() // 100)])

    app = web.Application()
    app.router.add_get("/v1/blocks/sub-key/{sub}/hits", on_request)
    app.router.add_get("/publish/{pub}/{sub}/0/{channel}/0/{message:.+}", publish)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    print(site._server.sockets[0].getsockname()[1], flush=True)  # type: ignore[union-attr]
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(serve(Path(sys.argv[1])))
