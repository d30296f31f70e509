"""Routing drift between a base (aligned) and a tuned model on harmful prompts (DESIGN §1.4).

Per MoE layer ``l``, over the selected prompt tokens (last prompt token by default):

* ``kl[l]`` = mean over rows of KL(softmax(z_base/T) ‖ softmax(z_tuned/T)) — the SafeMoE loss, per layer;
* ``jaccard[l]`` = mean over rows of |top-k_base ∩ top-k_tuned| / |top-k_base ∪ top-k_tuned| of the
  experts each router actually selected (1 = same experts, 0 = disjoint).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from moeguard.adapters import inspect_moe
from moeguard.artifacts import save_figure_atomic, write_csv_atomic, write_json_atomic
from moeguard.chat import Prompt, encode_prompts
from moeguard.errors import MoeguardError
from moeguard.routing.trace import RoutingTrace
from moeguard.routing.unwrap import unwrap
from moeguard.safemoe.loss import DEFAULT_TEMPERATURE, routing_kl_per_layer
from moeguard.safemoe.reference import ReferenceRouting
from moeguard.safemoe.routing import token_routing
from moeguard.tokens import Scope, pad_id_of


def topk_jaccard(base_topk: torch.Tensor, tuned_topk: torch.Tensor, num_experts: int) -> torch.Tensor:
    """Per-layer mean Jaccard overlap ``[layers]`` of selected-expert sets ``[rows, layers, k]``."""
    if base_topk.shape[:2] != tuned_topk.shape[:2]:
        raise MoeguardError(f"top-k shapes {tuple(base_topk.shape)} and {tuple(tuned_topk.shape)} do not match")
    rows, layers = base_topk.shape[:2]
    a = torch.zeros(rows, layers, num_experts, dtype=torch.bool).scatter_(-1, base_topk.long().cpu(), True)
    b = torch.zeros(rows, layers, num_experts, dtype=torch.bool).scatter_(-1, tuned_topk.long().cpu(), True)
    inter = (a & b).sum(-1).float()
    union = (a | b).sum(-1).float().clamp(min=1)
    return (inter / union).mean(dim=0)


@dataclass
class DriftReport:
    """Per-layer routing drift; ``layers`` are decoder-layer indices."""

    layers: list[int]
    kl: list[float]
    jaccard: list[float]
    temperature: float
    rows: int
    scope: str = "last"

    @property
    def mean_kl(self) -> float:
        """Mean per-layer KL (the SafeMoE loss divided by the number of layers)."""
        return sum(self.kl) / len(self.kl)

    @property
    def total_kl(self) -> float:
        """Sum over layers of the per-layer KL (exactly the SafeMoE ``L_route``)."""
        return sum(self.kl)

    @property
    def mean_jaccard(self) -> float:
        """Mean per-layer top-k Jaccard overlap."""
        return sum(self.jaccard) / len(self.jaccard)

    def table(self) -> list[tuple[int, float, float]]:
        """``(layer, kl, jaccard)`` rows."""
        return list(zip(self.layers, self.kl, self.jaccard, strict=True))

    def write(self, output: str | Path, metadata: dict | None = None) -> list[Path]:
        """``drift.csv`` (layer, kl, jaccard), ``drift.png`` and ``drift.json`` into ``output``."""
        output = Path(output)
        csv = write_csv_atomic(
            output / "drift.csv",
            ["layer", "kl", "jaccard"],
            [(layer, f"{k:.6g}", f"{j:.6g}") for layer, k, j in self.table()],
        )
        png = self.plot(output / "drift.png")
        meta = {
            **(metadata or {}),
            "temperature": self.temperature,
            "rows": self.rows,
            "scope": self.scope,
            "mean_kl": self.mean_kl,
            "total_kl": self.total_kl,
            "mean_jaccard": self.mean_jaccard,
        }
        return [csv, png, write_json_atomic(output / "drift.json", meta)]

    def plot(self, path: str | Path) -> Path:
        """Line plot of per-layer KL (left axis) and top-k Jaccard (right axis), matplotlib Agg."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        figure, left = plt.subplots(figsize=(7, 3.6))
        left.plot(self.layers, self.kl, marker="o", color="tab:red", label=f"KL (T={self.temperature:g})")
        left.set_xlabel("decoder layer")
        left.set_ylabel("KL(base ‖ tuned)", color="tab:red")
        right = left.twinx()
        right.plot(self.layers, self.jaccard, marker="s", color="tab:blue", label="top-k Jaccard")
        right.set_ylabel("top-k Jaccard", color="tab:blue")
        right.set_ylim(0, 1.05)
        left.set_title(f"Routing drift on {self.rows} harmful-prompt {'tokens' if self.scope == 'all' else 'prompts'}")
        figure.tight_layout()
        try:
            return save_figure_atomic(figure, path, dpi=120)
        finally:
            plt.close(figure)


def routing_drift(
    base_logits: torch.Tensor,
    base_topk: torch.Tensor,
    tuned_logits: torch.Tensor,
    tuned_topk: torch.Tensor,
    layers: Sequence[int],
    temperature: float = DEFAULT_TEMPERATURE,
    scope: str = "last",
) -> DriftReport:
    """Drift from routing tensors: logits ``[rows, layers, E]`` and selected experts ``[rows, layers, k]``."""
    kl = routing_kl_per_layer(base_logits, tuned_logits, temperature)
    jac = topk_jaccard(base_topk, tuned_topk, base_logits.shape[-1])
    return DriftReport(list(layers), kl.tolist(), jac.tolist(), temperature, int(base_logits.shape[0]), scope)


def drift_between_traces(
    base: RoutingTrace, tuned: RoutingTrace, temperature: float = DEFAULT_TEMPERATURE, scope: str = "last"
) -> DriftReport:
    """Drift from two recorded traces of the same prompts (e.g. two ``moeguard capture --logits`` folders)."""
    for name, trace in (("base", base), ("tuned", tuned)):
        if trace.logits is None:
            raise MoeguardError(f"the {name} routing has no router logits; capture it with --logits")
    if (base.layers, base.num_experts) != (tuned.layers, tuned.num_experts):
        raise MoeguardError(
            f"base routing has MoE layers {base.layers} x {base.num_experts} experts but tuned has "
            f"{tuned.layers} x {tuned.num_experts}; compare a model with its own fine-tune"
        )
    if base.sequences is not None and tuned.sequences is not None and base.sequences != tuned.sequences:
        raise MoeguardError("the two routings were recorded on different token sequences; capture the same prompts")
    if not torch.equal(base.lengths, tuned.lengths):
        raise MoeguardError("the two routings record different tokens; capture the same prompts with the same scope")
    assert base.logits is not None and tuned.logits is not None
    return routing_drift(base.logits, base.indices, tuned.logits, tuned.indices, base.layers, temperature, scope)


def drift_from_reference(
    reference: ReferenceRouting | RoutingTrace,
    tuned: nn.Module,
    temperature: float = DEFAULT_TEMPERATURE,
    batch_size: int = 8,
    progress=None,
) -> DriftReport:
    """Drift of ``tuned`` from recorded routing (a SafeMoE reference or a capture with logits), replaying
    the recorded token sequences on ``tuned``."""
    if isinstance(reference, RoutingTrace):
        reference = ReferenceRouting.from_trace(reference, scope=reference.meta.get("scope", "last"))
    base = unwrap(tuned)
    moe = inspect_moe(base)
    reference.check_compatible(moe, vocab_size=getattr(base.config, "vocab_size", None))
    pad = getattr(base.config, "pad_token_id", None)
    result = token_routing(
        tuned,
        reference.sequences,
        pad if isinstance(pad, int) else 0,
        reference.scope,
        batch_size,
        moe=moe,
        progress=progress,
    )
    return drift_between_traces(reference.trace, result, temperature, reference.scope)


def measure_drift(
    base: nn.Module,
    tuned: nn.Module,
    tokenizer,
    prompts: Sequence[Prompt],
    temperature: float = DEFAULT_TEMPERATURE,
    scope: Scope = "last",
    batch_size: int = 8,
    progress=None,
) -> DriftReport:
    """Drift between two loaded models on the same tokenised prompts (``progress(n)``: prompts done, both
    models counted)."""
    base_moe = inspect_moe(base)
    tuned_moe = inspect_moe(tuned)
    if (base_moe.layers, base_moe.num_experts) != (tuned_moe.layers, tuned_moe.num_experts):
        raise MoeguardError(
            f"base has MoE layers {base_moe.layers} x {base_moe.num_experts} experts but tuned has "
            f"{tuned_moe.layers} x {tuned_moe.num_experts}; compare a model with its own fine-tune"
        )
    if not prompts:
        raise MoeguardError("the prompt set is empty; give at least one harmful prompt")
    sequences = encode_prompts(tokenizer, prompts)
    pad = pad_id_of(tokenizer)
    n = len(sequences)
    a = token_routing(base, sequences, pad, scope, batch_size, moe=base_moe, progress=progress)
    b = token_routing(
        tuned,
        sequences,
        pad,
        scope,
        batch_size,
        moe=tuned_moe,
        progress=None if progress is None else lambda done: progress(n + done),
    )
    return drift_between_traces(a, b, temperature, scope)
