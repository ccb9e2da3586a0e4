"""pfunc benchmark: every figure beside its floor (the same work with no pfunc layers,
measured in the same run) and its target from the performance issue. Asserts nothing.

    python bench/run.py [--quick] [--compare] [--kv-items 1000000] [--shrink-wait 60]

Floors: cold `pfunc run` against `python -c "import quickjs, sqlite3"`; executions against
the same handler on bare QuickJS and raw sqlite3 (bench/floor.py); the dev server against
aiohttp running that in line (bench/floor_server.py). `--quick` runs smaller samples;
`--compare` also serves the equivalent Worker with Miniflare (bench/miniflare.py).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import measure


def pct(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def settle_disk() -> None:
    """Write the page cache out before a timed section: a run's files (stores, WALs) left
    dirty by the section before are otherwise written back during the next, and the
    stalls land on whichever figure is being measured (Python handlers, two processes
    answering each other, saw a few ms on 1-2% of executions)."""
    if hasattr(os, "sync"):
        os.sync()


class Table:
    def __init__(self) -> None:
        self.missed = 0

    def row(self, name: str, figure: str, floor: str, target: str, ok: bool | None) -> None:
        verdict = "-" if ok is None else ("meets" if ok else "MISSES")
        self.missed += ok is False
        print(f"{name:<34} {figure:<30} {floor:<26} {target:<22} {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller samples")
    parser.add_argument(
        "--compare",
        action="store_true",
        help="also measure Miniflare on the equivalent Worker (npm install)",
    )
    parser.add_argument("--kv-items", type=int, default=1_000_000)
    parser.add_argument(
        "--shrink-wait",
        type=float,
        default=60.0,
        help="seconds after a burst before counting threads and memory",
    )
    args = parser.parse_args()
    quick = args.quick
    n_cold, n_warm, n_server = (7, 1000, 1500) if quick else (15, 3000, 3000)

    print(f"pfunc benchmark on {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    print(f"{'figure':<34} {'pfunc':<30} {'floor':<26} {'target':<22} verdict")
    table = Table()
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)

        # --- cold pfunc run -----------------------------------------------------------
        cold, floor, peak = measure.cold(n_cold, folder)
        ratio = statistics.median(cold) / statistics.median(floor)
        table.row(
            "cold pfunc run",
            f"{statistics.median(cold) * 1000:.0f} ms",
            f"{statistics.median(floor) * 1000:.0f} ms",
            "<= 2.5x floor",
            ratio <= 2.5,
        )
        table.row("cold peak RSS", f"{peak:.1f} MiB", "", "<= 40 MiB", peak <= 40)

        # --- warm executions ----------------------------------------------------------
        settle_disk()
        warm = asyncio.run(measure.warm(n_warm, folder))
        warm_floor = measure.warm_floor(n_warm, folder)
        ratio = statistics.mean(warm) / statistics.mean(warm_floor)
        table.row(
            "warm execution, 3 KV ops",
            f"{statistics.median(warm) * 1e6:.0f} us p50 ({ratio:.2f}x)",
            f"{statistics.median(warm_floor) * 1e6:.0f} us p50",
            "<= 2x floor",
            ratio <= 2,
        )
        # Diagnostics: floors that keep PubNub's ordering (bench/floor.py), to tell what the
        # ordering and the time limit cost from what pfunc's own layers add.
        orderings = (
            ("rounds", "floor in PubNub's order"),
            ("queued", "the same, queued (binding's limit)"),
        )
        for ordering, name in orderings:
            ordered = measure.warm_floor(n_warm, folder, ordering)
            ratio = statistics.mean(warm) / statistics.mean(ordered)
            table.row(
                f"  {name}",
                f"pfunc is {ratio:.2f}x this",
                f"{statistics.median(ordered) * 1e6:.0f} us p50",
                "(diagnostic)",
                None,
            )
        # pfunc's own sandbox (prelude, order, time limit, report) with no Python layers:
        # what the executor, the loop and the modules add is pfunc's time beside it.
        alone = measure.warm_sandbox_floor(n_warm, folder)
        ratio = statistics.mean(warm) / statistics.mean(alone)
        of_floor = statistics.mean(alone) / statistics.mean(warm_floor)
        table.row(
            "  pfunc's sandbox, no Python layers",
            f"pfunc is {ratio:.2f}x this",
            f"{statistics.median(alone) * 1e6:.0f} us p50 ({of_floor:.2f}x floor)",
            "(diagnostic)",
            None,
        )
        settle_disk()
        # As many executions as the JavaScript figure's: the VM's rare 3-5 ms stalls (one
        # in ~100-300 executions here, either language) move a mean of a few hundred by 5-15%.
        python = asyncio.run(measure.warm(n_warm, folder, measure.PYTHON_EXAMPLE))
        ratio = statistics.mean(python) / statistics.mean(warm)
        # The verdict reads the means; the medians' ratio is shown too, since two processes
        # that answer each other are the most exposed to a busy or virtual machine's stalls.
        typical = statistics.median(python) / statistics.median(warm)
        table.row(
            "Python handler, warm",
            f"{statistics.median(python) * 1e6:.0f} us p50 ({ratio:.2f}x JS; p50 {typical:.2f}x)",
            "the JavaScript handler",
            "<= 1.5x JS",
            ratio <= 1.5,
        )

        # --- pfunc test ----------------------------------------------------------------
        # One scenario of 1,000 steps and 100 of 10, run in turn three times each: the
        # overhead of a scenario is their difference, ~36 ms in ~0.3 s, which one run
        # of each left to the machine's noise (it read -0.04 ms once).
        long_one = measure.scenario_file(folder, "long", 1, 1000)
        hundred = measure.scenario_file(folder, "hundred", 100, 10)
        steps, totals = [], []
        for _ in range(3):
            settle_disk()
            steps.append(measure.run_scenarios(long_one) / 1000)
            settle_disk()
            totals.append(measure.run_scenarios(hundred))
        step, total = statistics.median(steps), statistics.median(totals)
        ratio = step / statistics.mean(warm_floor)
        table.row(
            "pfunc test step",
            f"{step * 1e6:.0f} us ({ratio:.2f}x)",
            f"{statistics.mean(warm_floor) * 1e6:.0f} us",
            "<= 2.5x floor",
            ratio <= 2.5,
        )
        overhead = (total - 1000 * step) / 100
        table.row(
            "pfunc test, per-scenario overhead",
            f"{overhead * 1000:.2f} ms" if overhead > 0 else "~0 ms (within the noise)",
            "",
            "<= 1 ms",
            overhead <= 0.001,
        )
        table.row("pfunc test, 1,000 steps/100 sc.", f"{total:.2f} s", "", "<= 0.4 s", total <= 0.4)
        many = measure.scenario_file(folder, "many", 1000, 10)
        spread = measure.scale_out(many, 2)
        table.row("pfunc test -n 2, 10,000 steps", f"{spread:.1f} s", "", "(reported)", None)

        # --- KV pages ------------------------------------------------------------------
        items = 100_000 if quick else args.kv_items
        for what, seconds in measure.kv_pages(folder, items).items():
            table.row(
                f"{what} ({items:,} items)",
                f"{seconds * 1000:.2f} ms a page",
                "",
                "<= 5 ms",
                seconds <= 0.005,
            )

        # --- the dev log ---------------------------------------------------------------
        human, ndjson = measure.log_cost()
        table.row(
            "dev log line, human",
            f"{human * 1e6:.1f} us",
            f"NDJSON {ndjson * 1e6:.1f} us",
            "near NDJSON (<= 2x)",
            human <= 2 * ndjson,
        )

        # --- the dev server --------------------------------------------------------------
        dev_folder, floor_folder = folder / "dev", folder / "floor"
        dev_folder.mkdir()
        floor_folder.mkdir()
        server = measure.Server(dev_folder)
        floor_server = measure.Server(floor_folder, floor=True)
        try:
            for label, dev_url, floor_url in (
                ("on-request, 1 KV op", lambda: server.hits, lambda: floor_server.hits),
                ("publish, 3-op rate limiter", server.publish_url, floor_server.publish_url),
            ):
                settle_disk()
                dev = measure.rounds(dev_url, n_server, 8, 5)
                base = measure.rounds(floor_url, n_server, 8, 1)[0]
                rates = [rate for rate, _ in dev]
                best, worst = max(rates), min(rates)
                ratio = statistics.median(rates) / base[0]
                table.row(
                    f"dev server {label}",
                    f"{statistics.median(rates):.0f} req/s ({ratio:.0%})",
                    f"{base[0]:.0f} req/s",
                    ">= 50% of floor",
                    ratio >= 0.5,
                )
                p99 = statistics.median(pct(lat, 0.99) for _, lat in dev) * 1000
                table.row(
                    "  p99, 8 connections",
                    f"{p99:.1f} ms",
                    f"{pct(base[1], 0.99) * 1000:.1f} ms",
                    "<= 5 ms",
                    p99 <= 5,
                )
                table.row(
                    "  five rounds",
                    f"{worst:.0f}..{best:.0f} req/s",
                    "",
                    "within 25%",
                    worst >= 0.75 * best,
                )
            for kind, label in (("spin", "a runaway handler"), ("retry", "an in-line retry loop")):
                during = measure.during_runaway(server, n_server // 2, 8, kind)
                table.row(
                    f"  p99 during {label}",
                    f"{pct(during, 0.99) * 1000:.1f} ms",
                    "",
                    "<= 20 ms",
                    pct(during, 0.99) <= 0.020,
                )
            before = server.usage()
            asyncio.run(measure.load(lambda: server.hits, 2000, 64))
            after = server.usage()
            time.sleep(args.shrink_wait)
            settled = server.usage()
            ok = settled[0] <= before[0] * 1.1 and settled[1] <= before[1] * 1.1
            table.row(
                f"  {args.shrink_wait:g} s after 64-connection burst",
                f"{settled[0]} threads, {settled[1]:.0f} MiB",
                f"before {before[0]}, {before[1]:.0f} MiB",
                "within 10% of before",
                ok,
            )
            table.row(
                "  right after the burst",
                f"{after[0]} threads, {after[1]:.0f} MiB",
                "",
                "(reported)",
                None,
            )
        finally:
            server.stop()
            floor_server.stop()
    if args.compare:
        compare(table, n_server)
    print(f"\n{table.missed} figure(s) miss their target")


def compare(table: Table, requests: int) -> None:
    """pfunc dev beside Miniflare: the same on-request work, the same load."""
    import miniflare

    try:
        peer = miniflare.Miniflare()
    except miniflare.Unavailable as why:
        print(f"(--compare skipped: {why})")
        return
    with tempfile.TemporaryDirectory() as name:
        server = measure.Server(Path(name))
        try:
            ours = measure.rounds(lambda: server.hits, requests, 8, 3)
            theirs = measure.rounds(lambda: peer.url, requests, 8, 3)
        finally:
            server.stop()
            peer.stop()
    ours_rate = statistics.median(rate for rate, _ in ours)
    their_rate = statistics.median(rate for rate, _ in theirs)
    table.row("Miniflare, on-request 1 KV op", f"{their_rate:.0f} req/s", "", "(peer)", None)
    table.row(
        "  pfunc dev / Miniflare", f"{ours_rate / their_rate:.2f}x the rate", "", "(peer)", None
    )
    their_p99 = statistics.median(pct(lat, 0.99) for _, lat in theirs) * 1000
    our_p99 = statistics.median(pct(lat, 0.99) for _, lat in ours) * 1000
    table.row(
        "  p99, pfunc dev / Miniflare", f"{our_p99:.1f} ms / {their_p99:.1f} ms", "", "(peer)", None
    )
    table.row(
        "  Miniflare start to ready", f"{peer.start_seconds * 1000:.0f} ms", "", "(peer)", None
    )


if __name__ == "__main__":
    main()
