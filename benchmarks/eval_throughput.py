"""Eval throughput with batching vs one prompt at a time, as a ratio measured side by side in one run.

    python benchmarks/eval_throughput.py [--quick] [--model builtin:organism] [--prompts N] [--threads T]

Times ``moeguard.eval.run.run_eval`` (generation through ``moeguard.generation.generate``, judging, the
per-sample JSONL and the summary) on the same held-out harmful prompts of the model organism, baseline only,
greedy, 40 new tokens: once with ``--batch-size 40`` and once with ``--batch-size 1``, interleaved, by median.
Prints prompts/s of each and the batched / one-at-a-time ratio.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _timing import interleaved_medians  # noqa: E402

from moeguard.eval.run import EvalSettings, run_eval  # noqa: E402
from moeguard.models import load_model  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="builtin:organism")
    parser.add_argument("--benchmark", default="builtin:organism-harmful")
    parser.add_argument("--prompts", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=40)
    parser.add_argument("--max-new-tokens", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="16 prompts, 1 repeat")
    args = parser.parse_args()
    if args.quick:
        args.prompts, args.repeats = 16, 1
    torch.set_num_threads(args.threads)
    model, tokenizer = load_model(args.model)
    work_dir = tempfile.TemporaryDirectory(prefix="moeguard-eval-throughput-")  # removed at exit
    work = Path(work_dir.name)

    def run(batch_size: int):
        def once():
            settings = EvalSettings(
                model=args.model,
                benchmark=args.benchmark,
                limit=args.prompts,
                max_new_tokens=args.max_new_tokens,
                batch_size=batch_size,
                bootstrap=100,
                output=work / f"batch-{batch_size}",
                overwrite=True,
            )
            result = run_eval(settings, progress=False, model=model, tokenizer=tokenizer)
            assert result.generated == args.prompts

        return once

    batched, single = f"batch size {args.batch_size}", "batch size 1"
    times = interleaved_medians({batched: run(args.batch_size), single: run(1)}, repeats=args.repeats, warmup=0)
    print(
        f"{args.model}, {args.prompts} prompts, {args.max_new_tokens} new tokens, {args.threads} thread(s), "
        f"median of {args.repeats}"
    )
    for name, seconds in times.items():
        print(f"  {name:>14}: {seconds:7.2f} s  {args.prompts / seconds:7.2f} prompts/s")
    print(f"batched / one at a time: {times[single] / times[batched]:.2f}x prompts/s")


if __name__ == "__main__":
    main()
