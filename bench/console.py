"""The dev console under a flood: 10,000 executions at full speed through `pfunc dev`,
with no console open, then with the console page open (headless Chromium, if Playwright
and /usr/bin/chromium are there; else a bare server-sent-events reader).

Prints executions per second both ways, how many the page received and kept (it keeps
the last 1,000), and how long the page took to answer while and after the flood (its
responsiveness). Asserts nothing.

    python bench/console.py [--executions 10000] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import threading
import time
from pathlib import Path

from dev_process import start_server

PROJECT = (
    '[project]\nsubscribe_key = "sub-c-con"\npublish_key = "pub-c-con"\n\n'
    '[[functions]]\nname = "stamp"\nfile = "stamp.js"\nevent = "before-publish"\n'
    'channels = ["room"]\n'
)
HANDLER = "export default (request) => { request.message.seen = true; return request.ok(); };\n"


async def flood(base: str, executions: int, concurrency: int) -> float:
    import aiohttp

    url = f"{base}/publish/pub-c-con/sub-c-con/0/room/0/"
    left = iter(range(executions))

    async def worker(session: aiohttp.ClientSession) -> None:
        for number in left:
            async with session.get(url + json.dumps({"n": number})) as answer:
                await answer.read()

    started = time.perf_counter()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    return executions / (time.perf_counter() - started)


def open_page(base: str):
    """A console page in headless Chromium, or None without Playwright or Chromium."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    if not Path("/usr/bin/chromium").exists():
        return None
    driver = sync_playwright().start()
    browser = driver.chromium.launch(executable_path="/usr/bin/chromium", headless=True)
    page = browser.new_page()
    page.goto(base + "/#executions")
    page.wait_for_selector(".live.ok")
    return driver, browser, page


# The page's count of entries it keeps ("N of M kept"): M.
KEPT_JS = "+(/of (\\d+) kept/.exec(document.querySelector('.count').textContent) || [0, 0])[1]"


def _kept(page) -> int:
    return int(page.evaluate(f"() => {KEPT_JS}"))


def round_trip_ms(page) -> float:
    started = time.perf_counter()
    page.evaluate("1 + 1")
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--executions", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pfunc-console-") as folder:
        Path(folder, "pfunc.toml").write_text(PROJECT)
        Path(folder, "stamp.js").write_text(HANDLER)
        server, base = start_server(folder)
        try:
            asyncio.run(flood(base, 200, args.concurrency))  # warm: sandboxes loaded
            closed = asyncio.run(flood(base, args.executions, args.concurrency))
            print(f"console closed: {closed:,.0f} executions/s ({args.executions:,})")
            opened = open_page(base)
            if opened is None:
                print("no Playwright or Chromium: the page part is skipped")
                return
            driver, browser, page = opened
            backlog = _kept(page)  # what the page was sent on opening, before this flood
            result: dict[str, float] = {}
            flooding = threading.Thread(
                target=lambda: result.update(
                    rate=asyncio.run(flood(base, args.executions, args.concurrency))
                )
            )
            flooding.start()
            during = []
            while flooding.is_alive():
                during.append(round_trip_ms(page))
                time.sleep(0.2)
            flooding.join()
            print(f"console open:   {result['rate']:,.0f} executions/s ({args.executions:,})")
            # The page keeps its newest 1,000: it holds this flood's too, up to that.
            page.wait_for_function(f"() => ({KEPT_JS}) >= {min(1000, backlog + args.executions)}")
            print(
                f"page: {page.inner_text('.count')}; answers in {max(during):.0f} ms at worst "
                f"during the flood (median {sorted(during)[len(during) // 2]:.0f} ms), "
                f"{round_trip_ms(page):.1f} ms after; rows rendered: "
                f"{page.locator('tr.execution').count()}"
            )
            browser.close()
            driver.stop()
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
