"""The routing-adapter contract: one subclass per routing family (DESIGN §1.1)."""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import nn

#: Margin SteerMoE puts above the maximum (activate) or below the minimum (deactivate) score.
STEER_MARGIN = 0.01


class RoutingAdapter(ABC):
    """Re-implements one family's routing so that it can be recomputed on steered scores.

    ``route`` must reproduce the model's own router output exactly (tested per family). Steering
    works in a *steering space*: log-probabilities for families whose routing is invariant to a
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
        return int(router.top_k)

    def num_experts(self, router: nn.Module) -> int:
        """Routed experts in this router's layer."""
        return int(router.num_experts)

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

    def steered_route(
        self,
        router: nn.Module,
        logits: torch.Tensor,
        hidden: torch.Tensor,
        activate: torch.Tensor | None,
        deactivate: torch.Tensor | None,
        soft_alpha: float | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Route with experts forced on/off (``soft_alpha is None``) or nudged by ±alpha.

        ``activate`` and ``deactivate`` are boolean masks of shape ``[E]`` (None: no such experts).
        """
        scores = self.to_steering_space(logits)
        if soft_alpha is None:
            original = scores  # both bounds come from the unedited scores
            if activate is not None:
                scores = torch.where(activate, original.amax(dim=-1, keepdim=True) + STEER_MARGIN, scores)
            if deactivate is not None:
                scores = torch.where(deactivate, original.amin(dim=-1, keepdim=True) - STEER_MARGIN, scores)
        else:
            scores = scores + soft_shift(activate, deactivate, soft_alpha, scores.dtype)
        return self.route_steering_scores(router, scores, hidden, logits)

    def probabilities(self, router: nn.Module, logits: torch.Tensor) -> torch.Tensor:
        """The full router distribution ``[N, E]`` (softmax of the logits unless the family differs)."""
        return torch.softmax(logits.float(), dim=-1)

    def validate_steering(self, router: nn.Module, activate: list[int], deactivate: list[int]) -> str | None:
        """Family-specific checks on one layer's steering sets; returns a problem or None."""
        return None


def soft_shift(
    activate: torch.Tensor | None, deactivate: torch.Tensor | None, alpha: float, dtype: torch.dtype
) -> torch.Tensor | float:
    """``+alpha`` on activated and ``-alpha`` on deactivated experts (soft steering)."""
    shift: torch.Tensor | float = 0.0
    if activate is not None:
        shift = shift + alpha * activate.to(dtype)
    if deactivate is not None:
        shift = shift - alpha * deactivate.to(dtype)
    return shift
