"""Memory of streaming detection: N vs 10×N pairs on a tiny model, as ratios.

    python benchmarks/detect_memory.py [--pairs N] [--bootstrap R] [--batch-size B]

Each size runs in a fresh process: load the model, warm up on a few pairs, then score a lazily
generated stream of pairs and report the peak-RSS growth over the warmed-up baseline
(``resource.getrusage``) and the bytes held by the result. Detection keeps ``[layers, experts]`` counts
and ``[resamples, layers, experts]`` bootstrap sums (flat: the 10×N / N ratio should be ~1) plus, for the
pair-level statistics, one int32 ``[layers, experts]`` table and a span length per pair and side
(O(pairs · layers · experts): 10× the pairs, ~10× these bytes, still small next to the model).
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator


def pair_stream(n: int) -> Iterator[dict]:
    """``n`` distinct digit/word counting pairs, generated lazily (the data is never held in memory)."""
    for i in range(n):
        user = [{"role": "user", "content": f"Count to five, request {i}."}]
        digits = "1, 2, 3, 4, 5." if i % 2 else "1, 2, 3."
        yield {
            "messages_a": user + [{"role": "assistant", "content": digits}],
            "messages_b": user + [{"role": "assistant", "content": "one, two, three, four, five."}],
        }


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def child(folder: str, n: int, bootstrap: int, batch_size: int) -> dict:
    """Score ``n`` pairs in this process; return memory figures."""
    import torch

    from moeguard.detect import detect_experts
    from moeguard.models import load_model

    torch.set_num_threads(1)
    model, tokenizer = load_model(folder)
    detect_experts(model, tokenizer, pair_stream(2 * batch_size), batch_size=batch_size, bootstrap=bootstrap)
    gc.collect()
    before = peak_rss_mb()
    start = time.perf_counter()
    result = detect_experts(model, tokenizer, pair_stream(n), batch_size=batch_size, bootstrap=bootstrap)
    seconds = time.perf_counter() - start
    tensors = [
        result.counts_a,
        result.counts_b,
        result.boot_counts_a,
        result.boot_counts_b,
        result.boot_tokens_a,
        result.boot_tokens_b,
    ]
    per_pair = [result.pair_counts_a, result.pair_counts_b, result.pair_tokens_a, result.pair_tokens_b, result.clusters]
    return {
        "pairs": result.pairs,
        "tokens": result.tokens_a + result.tokens_b,
        "seconds": seconds,
        "baseline_mb": before,
        "peak_mb": peak_rss_mb(),
        "growth_mb": peak_rss_mb() - before,
        "accumulator_bytes": sum(t.numel() * t.element_size() for t in tensors if t is not None),
        "per_pair_bytes": sum(t.numel() * t.element_size() for t in per_pair if t is not None),
    }


def run_child(folder: str, n: int, bootstrap: int, batch_size: int) -> dict:
    command = [
        sys.executable,
        __file__,
        "--child",
        folder,
        "--pairs",
        str(n),
        "--bootstrap",
        str(bootstrap),
        "--batch-size",
        str(batch_size),
    ]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=100, help="N (the large run uses 10×N)")
    parser.add_argument("--bootstrap", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--child", metavar="FOLDER", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.pairs, args.bootstrap, args.batch_size)))
        return

    from moeguard.testing import save_tiny_model

    with tempfile.TemporaryDirectory() as folder:
        save_tiny_model("olmoe", folder)
        small = run_child(folder, args.pairs, args.bootstrap, args.batch_size)
        large = run_child(folder, 10 * args.pairs, args.bootstrap, args.batch_size)
    print(f"tiny OLMoE (3 MoE layers x 8 experts, top-2), bootstrap {args.bootstrap}, batch {args.batch_size}")
    print(
        f"{'pairs':>7} {'tokens':>8} {'seconds':>8} {'baseline MB':>12} {'peak MB':>8} {'growth MB':>10} "
        f"{'accum. bytes':>13} {'per-pair bytes':>15}"
    )
    for row in (small, large):
        print(
            f"{row['pairs']:>7} {row['tokens']:>8} {row['seconds']:>8.2f} {row['baseline_mb']:>12.1f} "
            f"{row['peak_mb']:>8.1f} {row['growth_mb']:>10.2f} {row['accumulator_bytes']:>13} "
            f"{row['per_pair_bytes']:>15}"
        )
    print(
        f"10xN / N: peak RSS {large['peak_mb'] / small['peak_mb']:.3f}x, "
        f"accumulator bytes {large['accumulator_bytes'] / small['accumulator_bytes']:.3f}x, "
        f"per-pair bytes {large['per_pair_bytes'] / small['per_pair_bytes']:.1f}x, "
        f"RSS growth over baseline {large['growth_mb']:.2f} MB vs {small['growth_mb']:.2f} MB "
        f"(time {large['seconds'] / small['seconds']:.1f}x for 10x the pairs)"
    )


if __name__ == "__main__":
    main()
