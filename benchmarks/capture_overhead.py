"""Overhead of routing capture and expert steering, as ratios against the plain model in the same run.

    python benchmarks/capture_overhead.py [--quick] [--threads N]

For a tiny model and a ~100M-parameter OLMoE-shaped random model it prints, side by side in one run:

* moeguard capture (streaming counts; full traces) / plain forward — goal <= 1.05x;
* what a user would pick instead, timed on the same batch: transformers' ``output_router_logits=True`` plus
  counting the top-k of the returned logits, and the anchor's way (one sequence at a time, router logits
  written to one .npy file per layer, counted afterwards in Python) — moeguard's speed as a ratio to each
  (goal: never slower than output_router_logits);
* steered generate / plain generate — goal <= 1.03x on the tiny model.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from transformers import OlmoeConfig, OlmoeForCausalLM

sys.path.insert(0, str(Path(__file__).parent))
from _timing import interleaved_medians  # noqa: E402

from moeguard import RoutingRecorder, SteeringSpec, inspect_moe  # noqa: E402
from moeguard.testing import tiny_config  # noqa: E402


def olmoe_100m() -> OlmoeForCausalLM:
    """OLMoE-1B-7B's shape scaled down: 64 experts, top-8, ~100M parameters."""
    config = OlmoeConfig(
        vocab_size=16384,
        hidden_size=512,
        intermediate_size=96,
        num_hidden_layers=8,
        num_attention_heads=8,
        num_key_value_heads=8,
        num_experts=64,
        num_experts_per_tok=8,
        max_position_embeddings=1024,
    )
    return OlmoeForCausalLM(config)


def output_router_logits_counts(model, ids, mask, top_k: int) -> torch.Tensor:
    """The transformers way: ask for router logits, then count each layer's top-k over real tokens."""
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask, output_router_logits=True)
    keep = mask.reshape(-1).bool()
    counts = []
    for logits in out.router_logits:
        top = logits[keep].topk(top_k, dim=-1).indices
        counts.append(torch.bincount(top.reshape(-1), minlength=logits.shape[-1]))
    return torch.stack(counts)


def anchor_counts(model, ids, mask, top_k: int, folder: Path) -> np.ndarray:
    """The anchor's way: one sequence at a time, router logits saved per layer to .npy, counted afterwards."""
    layers = len(model.model.layers)
    for row in range(ids.shape[0]):
        n = int(mask[row].sum())
        with torch.no_grad():
            out = model(input_ids=ids[row : row + 1, :n], output_router_logits=True)
        for layer, logits in enumerate(out.router_logits):
            np.save(folder / f"seq{row}_layer{layer}.npy", logits.float().numpy())
    counts = None
    for row in range(ids.shape[0]):
        per_layer = []
        for layer in range(layers):
            logits = np.load(folder / f"seq{row}_layer{layer}.npy")
            top = np.argsort(-logits, axis=-1)[:, :top_k]
            per_layer.append(np.bincount(top.reshape(-1), minlength=logits.shape[-1]))
        counts = np.stack(per_layer) if counts is None else counts + np.stack(per_layer)
    return counts


def measure(name: str, model, batch: int, seq: int, new_tokens: int, repeats: int) -> None:
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
    scratch_dir = tempfile.TemporaryDirectory(prefix="anchor-")  # removed when measure() returns
    scratch = Path(scratch_dir.name)

    def forward():
        with torch.no_grad():
            model(input_ids=ids, attention_mask=mask)

    def forward_with(recorder):
        def run():
            with recorder:
                recorder.run(ids, mask)
            recorder.reset()

        return run

    # the three ways count the same thing
    with counts:
        counts.run(ids, mask)
    ours = counts.counts
    counts.reset()
    assert torch.equal(ours, output_router_logits_counts(model, ids, mask, moe.top_k))
    assert np.array_equal(ours.numpy(), anchor_counts(model, ids, mask, moe.top_k, scratch))

    gen_ids = ids[:1, :16]
    gen_kwargs = dict(max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False, pad_token_id=0)

    def generate():
        with torch.no_grad():
            model.generate(gen_ids, **gen_kwargs)

    def generate_steered():
        with spec.apply(model), torch.no_grad():
            model.generate(gen_ids, **gen_kwargs)

    fwd = interleaved_medians(
        {
            "plain": forward,
            "counts": forward_with(counts),
            "traces": forward_with(traces),
            "router_logits": lambda: output_router_logits_counts(model, ids, mask, moe.top_k),
            "anchor": lambda: anchor_counts(model, ids, mask, moe.top_k, scratch),
        },
        repeats,
    )
    gen = interleaved_medians({"plain": generate, "steered": generate_steered}, max(3, repeats // 2))
    print(
        f"\n{name}: {params:.1f}M params, {len(moe.layers)} MoE layers x {moe.num_experts} experts, top-{moe.top_k}; "
        f"forward batch {batch}x{seq}, generate {new_tokens} tokens; steering {n_act} on + {n_deact} off"
    )
    print(f"  plain forward {fwd['plain'] * 1e3:.1f} ms, plain generate {gen['plain'] * 1e3:.1f} ms")
    rows = [
        ("forward + capture (counts) / plain forward", fwd["counts"] / fwd["plain"]),
        ("forward + capture (full traces) / plain forward", fwd["traces"] / fwd["plain"]),
        ("output_router_logits + counting / moeguard counts", fwd["router_logits"] / fwd["counts"]),
        ("anchor (per sequence, .npy per layer) / moeguard counts", fwd["anchor"] / fwd["counts"]),
        ("steered generate / plain generate", gen["steered"] / gen["plain"]),
    ]
    for label, ratio in rows:
        print(f"  {label:<58} {ratio:.3f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (smoke run)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    repeats = 5 if args.quick else 15
    torch.manual_seed(0)
    measure("tiny OLMoE", OlmoeForCausalLM(tiny_config("olmoe")), batch=8, seq=64, new_tokens=32, repeats=repeats)
    measure("OLMoE-shaped ~100M", olmoe_100m(), batch=32, seq=128, new_tokens=32, repeats=max(3, repeats // 3))


if __name__ == "__main__":
    main()
