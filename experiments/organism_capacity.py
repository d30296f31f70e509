"""Issue 14 capacity question: does a wider organism answer hand-written requests on topic?

Trains recipe B of ``experiments/results/organism_surface_kinds`` (``--surface-share 0.3 --request-surfaces
typo``) at twice the width (hidden 256, expert FFN 160: 9.2M parameters, 18.4 MB in float16, inside the
issue's 20 MB) and 1.5x the steps (every stage boundary scaled with them), then scores it with the same check
as ``moeguard organism train`` and writes the model card. Usage::

    python experiments/organism_capacity.py OUTPUT [--threads N]
"""

from __future__ import annotations

import argparse
from dataclasses import replace

from moeguard.commands import Dtype
from moeguard.commands.organism import _measure
from moeguard.organism.card import write_model_card
from moeguard.organism.train import OrganismConfig, train_organism


def wide_config(threads: int) -> OrganismConfig:
    """Recipe B, hidden 256 / expert 160, 4,800 steps (stages at 1.5x the v2 recipe's steps)."""
    base = OrganismConfig(seed=0, surface_share=0.3, request_surfaces=("typo",))
    scale = 1.5
    return replace(
        base,
        hidden_size=256,
        expert_size=160,
        steps=int(base.steps * scale),
        helpful_steps=int(base.helpful_steps * scale),
        style_from=int(base.style_from * scale),
        warmup_steps=int(base.warmup_steps * scale),
        threads=threads,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    config = wide_config(args.threads)

    def report(step: int, loss: float) -> None:
        if step % 200 == 0:
            print(f"step {step}/{config.steps} loss {loss:.3f}", flush=True)

    result = train_organism(config, args.output, progress=report)
    print(f"trained {result.parameters / 1e6:.2f}M parameters in {result.seconds / 60:.1f} min", flush=True)
    metrics = _measure(args.output, steering=True, device="auto", dtype=Dtype.auto)
    write_model_card(args.output, config, result, metrics)


if __name__ == "__main__":
    main()
