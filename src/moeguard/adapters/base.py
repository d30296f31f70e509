"""The routing-adapter contract: one subclass per routing family (DESIGN §1.1).

An adapter knows three things about its family's router module:

* how to read the router's output (``read_output``: logits, top-k weights, top-k indices) and how to hand
  back edited weights and indices in the same form (``write_output``);
* its routing rule (``route``), re-implemented so that it reproduces the router's own output bit for bit
  (proved per family by the parity tests);
* what an :class:`~moeguard.routing.edits.ExpertEdit` means under that rule (``edited_route``).

Adapters never install hooks: :mod:`moeguard.routing` is the one place that touches routers.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, NamedTuple

import torch
from torch import nn

from moeguard.routing.edits import STEER_MARGIN, ExpertEdit, edit_scores

__all__ = ["STEER_MARGIN", "RouterOutput", "RoutingAdapter"]


class RouterOutput(NamedTuple):
    """What a router call decided: ``logits [N, E]``, ``weights [N, k]`` and ``indices [N, k]``."""

    logits: torch.Tensor
    weights: torch.Tensor
    indices: torch.Tensor


class RoutingAdapter(ABC):
    """Re-implements one family's routing so that it can be recomputed on edited scores.

    Steering works in a *steering space*: log-probabilities for families whose routing is invariant to a
    per-token shift of the logits (softmax, top-k→softmax), the raw logits otherwise.
    """

    #: Human-readable family name shown by ``moeguard inspect``.
    family: str = ""
    #: ``config.model_type`` values this adapter serves.
    model_types: tuple[str, ...] = ()
    #: Class names of the router modules inside a decoder layer.
    router_class_names: tuple[str, ...] = ()

    def top_k(self, router: nn.Module) -> int:
        """Experts selected per token."""
        return int(router.top_k)  # type: ignore[arg-type]

    def num_experts(self, router: nn.Module) -> int:
        """Routed experts in this router's layer."""
        return int(router.num_experts)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ router output
    def read_output(self, router: nn.Module, output: Any) -> RouterOutput:
        """The router call's decision from its return value (default: ``(logits, weights, indices)``)."""
        logits, weights, indices = output
        return RouterOutput(logits, weights, indices)

    def write_output(self, output: Any, weights: torch.Tensor, indices: torch.Tensor) -> Any:
        """The router's return value with ``weights`` / ``indices`` replaced (same dtypes as the original)."""
        logits, old_weights, _ = output
        return logits, weights.to(old_weights.dtype), indices

    # ------------------------------------------------------------------ routing rule
    @abstractmethod
    def route(
        self, router: nn.Module, logits: torch.Tensor, hidden: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The family's routing of router logits ``[N, E]`` → ``(weights [N, k], indices [N, k])``."""

    def to_steering_space(self, logits: torch.Tensor) -> torch.Tensor:
        """Scores on which SteerMoE edits act (log-softmax for shift-invariant families)."""
        return torch.log_softmax(logits.float(), dim=-1)

    def route_steering_scores(
        self, router: nn.Module, scores: torch.Tensor, hidden: torch.Tensor, logits: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Normal routing applied to edited steering-space scores."""
        return self.route(router, scores, hidden)

    def edited_route(
        self, router: nn.Module, logits: torch.Tensor, hidden: torch.Tensor, edit: ExpertEdit
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Routing with ``edit`` applied: SteerMoE's score edit, then the family's own rule."""
        scores = edit_scores(self.to_steering_space(logits), edit)
        return self.route_steering_scores(router, scores, hidden, logits)

    def probabilities(self, router: nn.Module | None, logits: torch.Tensor) -> torch.Tensor:
        """The full router distribution ``[N, E]`` (softmax of the logits unless the family differs)."""
        return torch.softmax(logits.float(), dim=-1)

    def validate_steering(self, router: nn.Module, activate: list[int], deactivate: list[int]) -> str | None:
        """Family-specific checks on one layer's steering sets; returns a problem or None."""
        return None
