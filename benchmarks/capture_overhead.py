"""Overhead of routing capture and expert steering, as ratios against the plain model in the same run.

    python benchmarks/capture_overhead.py [--quick]

Prints (forward with capture) / (plain forward) and (steered generate) / (plain generate) for a tiny
model and for a ~100M-parameter OLMoE-shaped random model. Targets: capture <= 1.05x, steering <= 1.03x.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from transformers import OlmoeConfig, OlmoeForCausalLM

sys.path.insert(0, str(Path(__file__).parent))
from _timing import interleaved_medians  # noqa: E402

from moeguard import RoutingRecorder, SteeringSpec, inspect_moe  # noqa: E402
from moeguard.testing import tiny_config  # noqa: E402


def olmoe_100m() -> OlmoeForCausalLM:
    """OLMoE-1B-7B's shape scaled down: 64 experts, top-8, ~100M parameters."""
    config = OlmoeConfig(vocab_size=16384, hidden_size=512, intermediate_size=96, num_hidden_layers=8,
                         num_attention_heads=8, num_key_value_heads=8, num_experts=64, num_experts_per_tok=8,
                         max_position_embeddings=1024)
    return OlmoeForCausalLM(config)


def measure(name: str, model, batch: int, seq: int, new_tokens: int, repeats: int) -> list[tuple[str, float]]:
    model.eval()
    moe = inspect_moe(model)
    params = sum(p.numel() for p in model.parameters()) / 1e6
    torch.manual_seed(0)
    ids = torch.randint(3, model.config.vocab_size, (batch, seq))
    mask = torch.ones_like(ids)
    counts = RoutingRecorder(moe, counts=True)
    traces = RoutingRecorder(moe, counts=True, traces=True)
    # the SteerMoE "unsafe" setting scaled to this model: ~1% activated, ~12% deactivated experts
    n_act = max(1, len(moe.layers) * moe.num_experts // 100)
    n_deact = max(1, len(moe.layers) * moe.num_experts // 8)
    flat = [(layer, e) for e in range(moe.num_experts) for layer in moe.layers]
    spec = SteeringSpec(activate=flat[:n_act], deactivate=flat[n_act : n_act + n_deact])

    def forward():
        with torch.no_grad():
            model(input_ids=ids, attention_mask=mask)

    def forward_with(recorder):
        def run():
            with recorder:
                recorder.run(ids, mask)
            recorder.reset()
        return run

    gen_ids = ids[:1, :16]
    gen_kwargs = dict(max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False, pad_token_id=0)

    def generate():
        with torch.no_grad():
            model.generate(gen_ids, **gen_kwargs)

    def generate_steered():
        with spec.apply(model), torch.no_grad():
            model.generate(gen_ids, **gen_kwargs)

    fwd = interleaved_medians({"plain": forward, "counts": forward_with(counts), "traces": forward_with(traces)},
                              repeats)
    gen = interleaved_medians({"plain": generate, "steered": generate_steered}, max(3, repeats // 2))
    print(f"\n{name}: {params:.1f}M params, {len(moe.layers)} MoE layers x {moe.num_experts} experts, top-{moe.top_k}; "
          f"forward batch {batch}x{seq}, generate {new_tokens} tokens; steering {n_act} on + {n_deact} off")
    rows = [
        ("forward + capture (counts) / plain forward", fwd["counts"] / fwd["plain"]),
        ("forward + capture (full traces) / plain forward", fwd["traces"] / fwd["plain"]),
        ("steered generate / plain generate", gen["steered"] / gen["plain"]),
    ]
    print(f"  plain forward {fwd['plain'] * 1e3:.1f} ms, plain generate {gen['plain'] * 1e3:.1f} ms")
    for label, ratio in rows:
        print(f"  {label:<50} {ratio:.3f}x")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (smoke run)")
    args = parser.parse_args()
    repeats = 5 if args.quick else 15
    torch.manual_seed(0)
    measure("tiny OLMoE", OlmoeForCausalLM(tiny_config("olmoe")), batch=8, seq=64, new_tokens=32, repeats=repeats)
    measure("OLMoE-shaped ~100M", olmoe_100m(), batch=4, seq=256, new_tokens=32, repeats=max(3, repeats // 2))


if __name__ == "__main__":
    main()
