"""JetMoE: Granite's rule, returned as a dispatch plan.

``JetMoeTopKGating`` (the MLP's ``mlp.router``) computes float32 logits, takes their top-k, a softmax over the
k cast to the hidden dtype, and returns a *plan*: ``(index_sorted_experts, batch_index, batch_gates,
expert_size, logits)`` — the flat ``[N*k]`` positions sorted by expert, the token of each, its gate, the
number of tokens per expert (a Python list) and the logits. ``read_output`` turns the plan back into
``(weights [N, k], indices [N, k])``; ``write_output`` builds the plan of new weights and indices exactly as
the router does.

Each JetMoE decoder layer also holds a mixture-of-attention-heads router (``self_attention.experts.router``,
the same class): it routes attention heads, not the MLP experts, and is out of moeguard's scope (not read,
not steered).

SteerMoE semantics: as GraniteMoE (top-k + softmax over the k are shift-invariant; edits on
``log_softmax(z)``).
"""

from __future__ import annotations

import torch

from moeguard.adapters.base import RouterOutput
from moeguard.adapters.registry import register_adapter
from moeguard.adapters.topk_softmax import GraniteMoeAdapter


class JetMoeAdapter(GraniteMoeAdapter):
    """JetMoE's MLP router: Granite's rule as a dispatch plan."""

    family = "topk-softmax (jetmoe, dispatch plan)"
    model_types: tuple[str, ...] = ("jetmoe",)
    router_class_names: tuple[str, ...] = ("JetMoeTopKGating",)

    def is_router(self, name, module):
        return super().is_router(name, module) and name == "mlp.router"

    def read_output(self, router, output):
        order, _, gates, expert_size, logits = output
        k = self.top_k(router)
        experts = torch.repeat_interleave(
            torch.arange(len(expert_size), device=order.device), torch.tensor(expert_size, device=order.device)
        )
        indices = torch.empty_like(order).scatter_(0, order, experts).view(-1, k)
        weights = torch.empty_like(gates).scatter_(0, order, gates).view(-1, k)
        return RouterOutput(logits, weights, indices)

    def write_output(self, output, weights, indices):
        logits = output[4]
        k = indices.shape[-1]
        gates = weights.to(output[2].dtype)
        counts = torch.zeros(indices.shape[0], logits.shape[-1], dtype=gates.dtype, device=gates.device)
        expert_size = counts.scatter(1, indices, 1).long().sum(0).tolist()
        _, order = indices.flatten().sort(0)
        batch_index = order.div(k, rounding_mode="trunc")
        return order, batch_index, gates.flatten()[order], expert_size, logits


register_adapter(JetMoeAdapter())
