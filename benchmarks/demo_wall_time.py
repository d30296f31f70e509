"""Wall time of ``moeguard demo``: idle, and with one competing CPU-bound process, with torch's default thread
count vs ``--threads auto`` (the cores the load leaves free), all in one run.

    python benchmarks/demo_wall_time.py [--runs 1]

Prints one line per (load, threads) and the slow-down under load for each thread setting. The competing
process is a Python busy loop (one core). Measure on an otherwise idle machine: the script reports the
1-minute load average it started with.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

BUSY = "import time\nend = time.time() + 3600\nwhile time.time() < end:\n    pass\n"


def demo_seconds(threads: str, runs: int) -> float:
    times = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as out:
            started = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "moeguard.cli", "demo", "--output", out, "--threads", threads],
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1, help="demo runs per setting (median)")
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    print(f"{cores} cores, load average at start {os.getloadavg()[0]:.2f}")
    settings = {"default": str(cores), "auto": "auto"}
    results = {}
    for load in ("idle", "one competing process"):
        busy = subprocess.Popen([sys.executable, "-c", BUSY]) if load != "idle" else None
        try:
            if busy is not None:
                time.sleep(65)  # let the 1-minute load average see the competitor
            for name, threads in settings.items():
                results[(load, name)] = demo_seconds(threads, args.runs)
                print(f"  {load:<24} threads {name:<8} {results[(load, name)]:7.1f} s", flush=True)
        finally:
            if busy is not None:
                busy.kill()
    for name in settings:
        ratio = results[("one competing process", name)] / results[("idle", name)]
        print(f"slow-down under load, threads {name}: {ratio:.2f}x")


if __name__ == "__main__":
    main()
