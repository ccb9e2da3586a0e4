"""Publish -> subscriber delivery latency through `pfunc dev`, with 100 subscribers.

100 long-polling subscribers (subscribe v2, as the SDKs poll) wait on one channel; a
publisher sends messages one at a time, each carrying its send time; every subscriber
records when each message reached it. Prints p50/p99 of publish-to-receipt over all
(message, subscriber) pairs. Asserts nothing.

    python bench/delivery.py [--subscribers 100] [--messages 100]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

from dev_process import start_server

PROJECT = '[project]\nsubscribe_key = "sub-c-lat"\npublish_key = "pub-c-lat"\n'


async def subscriber(session, base: str, number: int, wanted: int, seen: list[float]) -> None:
    url = f"{base}/v2/subscribe/sub-c-lat/room/0?uuid=s{number}&tt="
    async with session.get(url + "0") as first:
        cursor = (await first.json())["t"]["t"]
    got = 0
    while got < wanted:
        async with session.get(url + cursor) as answer:
            body = await answer.json()
        arrived = time.perf_counter()
        cursor = body["t"]["t"]
        for envelope in body["m"]:
            seen.append(arrived - envelope["d"]["sent"])
            got += 1


async def run(base: str, subscribers: int, messages: int) -> list[float]:
    import aiohttp

    seen: list[float] = []
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        waiting = [
            asyncio.ensure_future(subscriber(session, base, n, messages, seen))
            for n in range(subscribers)
        ]
        await asyncio.sleep(1.5)  # all subscribed
        for _ in range(messages):
            payload = json.dumps({"sent": time.perf_counter()})
            url = f"{base}/publish/pub-c-lat/sub-c-lat/0/room/0/{payload}"
            async with session.get(url) as answer:
                await answer.read()
            await asyncio.sleep(0.01)
        await asyncio.wait_for(asyncio.gather(*waiting), 60)
    return seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=100)
    parser.add_argument("--messages", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pfunc-latency-") as folder:
        Path(folder, "pfunc.toml").write_text(PROJECT)
        server, base = start_server(folder)
        try:
            latencies = sorted(asyncio.run(run(base, args.subscribers, args.messages)))
        finally:
            server.terminate()
            server.wait(timeout=30)
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000
    print(
        f"publish -> subscriber: {len(latencies)} deliveries ({args.messages} messages x "
        f"{args.subscribers} subscribers); p50 {p50:.1f} ms, p99 {p99:.1f} ms"
    )


if __name__ == "__main__":
    main()
