"""The vLLM backend against itself and against HF generate, side by side in one run (needs vLLM).

    python benchmarks/vllm_backend.py [--prompts 64] [--new-tokens 32] [--repeats 3] [--compiled]

On the organism, the same batch of held-out prompts, greedy (both engines give the same tokens, so one token
count serves both): tokens/s of vLLM plain, vLLM with every request steered (the demo's unsafe spec), vLLM
with a mixed batch (unsafe / none / safe), HF ``generate`` plain and steered, and vLLM with routing capture.
Variants run round-robin (median of the repeats) so drift in machine load hits all alike; the load average
is printed with the table.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", "nobind")

import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from _timing import interleaved_medians  # noqa: E402

from moeguard.backends import get_backend  # noqa: E402
from moeguard.builtin import resolve  # noqa: E402
from moeguard.models import resolve_model_path  # noqa: E402
from moeguard.steer import SteeringSpec  # noqa: E402


def organism_specs() -> tuple[SteeringSpec, SteeringSpec]:
    steering = json.loads((Path(resolve_model_path("builtin:organism")) / "metrics.json").read_text())["steering"]
    return SteeringSpec.from_dict(steering["unsafe_spec"]), SteeringSpec.from_dict(steering["safe_spec"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--compiled", action="store_true", help="vLLM's compiled mode (default: eager).")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    harmful = resolve("prompts", "organism-heldout-harmful", n=None, seed=0)
    prompts = (harmful * (args.prompts // len(harmful) + 1))[: args.prompts]
    unsafe, safe = organism_specs()
    mixed = [(unsafe, None, safe)[i % 3] for i in range(len(prompts))]

    start = time.perf_counter()
    vllm = get_backend("vllm", enforce_eager=not args.compiled, max_num_seqs=16, max_model_len=256).load(
        "builtin:organism"
    )
    init = time.perf_counter() - start
    torch.set_num_threads(args.threads)
    hf = get_backend("hf").load("builtin:organism")
    from moeguard.chat import encode_texts, format_prompt

    sequences = encode_texts(hf.tokenizer, [format_prompt(hf.tokenizer, p) for p in prompts])
    tokens: dict[str, int] = {}

    def vllm_run(name, specs, capture=False):
        def run():
            outputs, _ = vllm.run(sequences, specs, args.new_tokens, capture=capture)
            tokens[name] = sum(len(o.outputs[0].token_ids) for o in outputs)

        return run

    def hf_run(name, spec, twin):
        def run():
            hf.generate(prompts, args.new_tokens, steer=spec, batch_size=16)
            tokens[name] = tokens.get(twin, 0)  # greedy parity: HF produced the same tokens as its vLLM twin

        return run

    variants = {
        "vllm plain": vllm_run("vllm plain", [None] * len(prompts)),
        "vllm steered (unsafe)": vllm_run("vllm steered (unsafe)", [unsafe] * len(prompts)),
        "vllm mixed (unsafe/none/safe)": vllm_run("vllm mixed (unsafe/none/safe)", mixed),
        "vllm plain + capture": vllm_run("vllm plain + capture", [None] * len(prompts), capture=True),
        "hf generate plain": hf_run("hf generate plain", None, "vllm plain"),
        "hf generate steered (unsafe)": hf_run("hf generate steered (unsafe)", unsafe, "vllm steered (unsafe)"),
    }
    seconds = interleaved_medians(variants, args.repeats)
    rate = {name: tokens[name] / seconds[name] for name in variants}
    mode = "compiled" if args.compiled else "eager"
    print(
        f"organism, {len(prompts)} prompts, {args.new_tokens} new tokens, greedy, torch threads {args.threads}; "
        f"vLLM {mode}, engine start {init:.1f} s; load average {os.getloadavg()[0]:.1f} (2 cores)"
    )
    print(f"{'variant':32} {'seconds':>8} {'tokens':>7} {'tok/s':>8}")
    for name in variants:
        print(f"{name:32} {seconds[name]:8.3f} {tokens[name]:7d} {rate[name]:8.0f}")
    ratios = {
        "vllm steered / vllm plain": rate["vllm steered (unsafe)"] / rate["vllm plain"],
        "vllm mixed / vllm plain": rate["vllm mixed (unsafe/none/safe)"] / rate["vllm plain"],
        "vllm capture / vllm plain": rate["vllm plain + capture"] / rate["vllm plain"],
        "vllm plain / hf plain": rate["vllm plain"] / rate["hf generate plain"],
        "vllm steered / hf steered": rate["vllm steered (unsafe)"] / rate["hf generate steered (unsafe)"],
    }
    print("throughput ratios (tokens/s):")
    for name, value in ratios.items():
        print(f"  {name:28} {value:6.2f}")
    vllm.close()


if __name__ == "__main__":
    main()
