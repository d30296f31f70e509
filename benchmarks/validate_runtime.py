"""Wall time of ``moeguard validate`` on the model organism with its defaults (goal: under 5 minutes on 2 cores).

    python benchmarks/validate_runtime.py [--threads 2] [--random-sets 19] [--limit N]

Detects the unsafe spec first (``builtin:safety``, 200 pairs, deactivate 8 with ``--reverse``: the demo's unsafe
steering), then runs the command line ``moeguard validate builtin:organism --spec DETECT_DIR --benchmark
builtin:organism-harmful --pairs builtin:safety`` in a subprocess and times it end to end (start-up, model load,
baseline, 4 doses x (1 + 19 random sets), 8 leave-one-out specs, stability on the pairs, files). Prints the wall
time, the number of generations and the 1-minute load average at the start (other work on the cores slows it).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--random-sets", type=int, default=19)
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args()
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as work:
        detect_dir, out = Path(work) / "detect", Path(work) / "validate"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "moeguard.cli",
                "detect",
                "builtin:organism",
                "--pairs",
                "builtin:safety",
                "--activate",
                "0",
                "--deactivate",
                "8",
                "--reverse",
                "--output",
                str(detect_dir),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        command = [
            sys.executable,
            "-m",
            "moeguard.cli",
            "validate",
            "builtin:organism",
            "--spec",
            str(detect_dir),
            "--benchmark",
            "builtin:organism-harmful",
            "--pairs",
            "builtin:safety",
            "--random-sets",
            str(args.random_sets),
            "--output",
            str(out),
            "--json",
        ]
        if args.limit:
            command += ["--limit", str(args.limit)]
        started = time.perf_counter()
        done = subprocess.run(command, check=True, capture_output=True, text=True, env=env)
        seconds = time.perf_counter() - started
    summary = json.loads(done.stdout)
    print(
        f"moeguard validate on builtin:organism: {seconds:.1f} s wall ({seconds / 60:.2f} min; goal < 5 min), "
        f"{summary['generations']} generations x {summary['prompts']} prompts, {args.threads} threads, "
        f"load average at start {load:.2f}"
    )
    for d in summary["doses"]:
        print(
            f"  dose {d['dose']}: selected {100 * d['selected']:.1f}%, random {100 * d['random_mean']:.1f} ± "
            f"{100 * d['random_sd']:.1f}% (min {100 * d['random_min']:.1f}), p={d['p_value']:.3g}"
        )


if __name__ == "__main__":
    main()
