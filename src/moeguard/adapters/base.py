"""The routing-adapter contract: one subclass per routing family (DESIGN §1.1).

An adapter knows four things about its family's router module:

* which modules of a decoder layer are its routers (``router_class_names``, refined by ``is_router``);
* how to read the router's output (``read_output``: logits, top-k weights, top-k indices) and how to hand
  back edited weights and indices in the same form (``write_output``, or ``steer_output`` for routers whose
  output cannot carry them);
* its routing rule (``route``), re-implemented so that it reproduces the router's own output bit for bit
  (proved per family by the parity tests and checked on every model at load time, :mod:`.probe`);
* what an :class:`~moeguard.routing.edits.ExpertEdit` means under that rule (``edited_route``), written down
  in each family module's docstring.

Every routing method receives ``extra``: the router call's positional arguments after the hidden states
(a selection bias that some blocks pass in, DeepSeek-V4's token ids, ...).

Adapters never install hooks: :mod:`moeguard.routing` is the one place that touches routers.
"""

from __future__ import annotations

import weakref
from abc import ABC, abstractmethod
from typing import Any, NamedTuple

import torch
from torch import nn

from moeguard.routing.edits import STEER_MARGIN, ExpertEdit, edit_scores

__all__ = ["STEER_MARGIN", "RouterOutput", "RoutingAdapter", "force_choice", "keep_own_picks"]

#: The module that holds each inspected router (its MoE block, or the decoder layer), weakly.
_PARENTS: weakref.WeakKeyDictionary[nn.Module, nn.Module] = weakref.WeakKeyDictionary()


class RouterOutput(NamedTuple):
    """What a router call decided: ``logits [N, E]``, ``weights [N, k]`` and ``indices [N, k]``."""

    logits: torch.Tensor
    weights: torch.Tensor
    indices: torch.Tensor


def force_choice(choice: torch.Tensor, edit: ExpertEdit) -> torch.Tensor:
    """Selection scores with activated experts at ``+inf`` and deactivated ones at ``-inf``: a hard edit holds
    whatever a selection bias or a group mask would otherwise prefer."""
    if edit.activate is not None:
        choice = choice.masked_fill(edit.activate, float("inf"))
    if edit.deactivate is not None:
        choice = choice.masked_fill(edit.deactivate, float("-inf"))
    return choice


def keep_own_picks(choice: torch.Tensor, own: torch.Tensor, edit: ExpertEdit, k: int) -> torch.Tensor:
    """Top-k indices under a hard edit that keep the model's own picks ``own [N, k]`` explicitly.

    Ranks activated experts (``+inf`` in ``choice``) first, then the model's own picks that are not
    deactivated, then everything else by ``choice`` (ties broken by index). For rules whose selection scores
    tie often (bfloat16 probabilities of a near-uniform router, experts masked to the same ``0.0``), a plain
    top-k after masking one expert may break the ties differently and drop a second expert; this keeps
    "deactivation removes only that expert" exact.
    """
    kept = torch.zeros_like(choice, dtype=torch.bool).scatter_(1, own, True)
    if edit.deactivate is not None:
        kept = kept & ~edit.deactivate
    rank = choice.argsort(dim=-1, stable=True).argsort(dim=-1)
    tier = torch.where(torch.isposinf(choice), 2, kept.long())
    return torch.topk(tier * choice.shape[-1] + rank, k=k, dim=-1)[1]


class RoutingAdapter(ABC):
    """Re-implements one family's routing so that it can be recomputed on edited scores.

    Steering works in a *steering space*: log-probabilities for families whose routing is invariant to a
    per-token shift of the logits (softmax, top-k→softmax), the raw logits otherwise.
    """

    #: Human-readable family name shown by ``moeguard inspect`` and the support table.
    family: str = ""
    #: ``config.model_type`` values this adapter serves.
    model_types: tuple[str, ...] = ()
    #: Class names of the router modules inside a decoder layer.
    router_class_names: tuple[str, ...] = ()
    #: How SteerMoE steering works for this family, for the support table: ``exact`` (activation and
    #: deactivation hold on every token), or a short note on what is refused.
    steering: str = "exact"

    # ------------------------------------------------------------------ routers
    def is_router(self, name: str, module: nn.Module) -> bool:
        """Whether ``module`` (at path ``name`` inside its decoder layer) is the layer's MLP-experts router."""
        return type(module).__name__ in self.router_class_names

    def attach(self, router: nn.Module, parent: nn.Module) -> None:
        """Remember the module holding ``router`` (for families whose routing reads the MoE block)."""
        _PARENTS[router] = parent

    def parent(self, router: nn.Module) -> nn.Module:
        """The MoE block (or decoder layer) holding ``router``, as found by ``inspect_moe``."""
        try:
            return _PARENTS[router]
        except KeyError:
            from moeguard.errors import MoeguardError

            raise MoeguardError(
                f"{type(router).__name__} was not found by inspect_moe; call moeguard.inspect_moe(model) first"
            ) from None

    def top_k(self, router: nn.Module) -> int:
        """Experts selected per token."""
        return int(router.top_k)  # type: ignore[arg-type]

    def num_experts(self, router: nn.Module) -> int:
        """Routed experts in this router's layer (the width of counts and steering masks)."""
        return int(router.num_experts)  # type: ignore[arg-type]

    def shared_experts(self, config: Any) -> int | None:
        """Always-on experts per MoE layer when the family knows better than the config keys (None: ask them)."""
        return None

    # ------------------------------------------------------------------ router output
    def read_output(self, router: nn.Module, output: Any) -> RouterOutput:
        """The router call's decision from its return value (default: ``(logits, weights, indices)``)."""
        logits, weights, indices = output[:3]
        return RouterOutput(logits, weights, indices)

    def write_output(self, output: Any, weights: torch.Tensor, indices: torch.Tensor) -> Any:
        """The router's return value with ``weights`` / ``indices`` replaced (same dtypes as the original)."""
        logits, old_weights, _ = output[:3]
        return (logits, weights.to(old_weights.dtype), indices, *output[3:])

    def steer_output(
        self, router: nn.Module, output: Any, hidden: torch.Tensor, edit: ExpertEdit, extra: tuple = ()
    ) -> Any:
        """The router's return value under ``edit`` (default: ``edited_route`` written with ``write_output``)."""
        decision = self.read_output(router, output)
        weights, indices = self.edited_route(router, decision.logits, hidden, edit, extra)
        return self.write_output(output, weights, indices)

    # ------------------------------------------------------------------ routing rule
    @abstractmethod
    def route(
        self, router: nn.Module, logits: torch.Tensor, hidden: torch.Tensor, extra: tuple = ()
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The family's routing of router logits ``[N, E]`` → ``(weights [N, k], indices [N, k])``."""

    def to_steering_space(self, logits: torch.Tensor) -> torch.Tensor:
        """Scores on which SteerMoE edits act (log-softmax for shift-invariant families)."""
        return torch.log_softmax(logits.float(), dim=-1)

    def route_steering_scores(
        self, router: nn.Module, scores: torch.Tensor, hidden: torch.Tensor, logits: torch.Tensor, extra: tuple = ()
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Normal routing applied to edited steering-space scores."""
        return self.route(router, scores, hidden, extra)

    def edited_route(
        self, router: nn.Module, logits: torch.Tensor, hidden: torch.Tensor, edit: ExpertEdit, extra: tuple = ()
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Routing with ``edit`` applied: SteerMoE's score edit, then the family's own rule."""
        scores = edit_scores(self.to_steering_space(logits), edit)
        return self.route_steering_scores(router, scores, hidden, logits, extra)

    def probabilities(self, router: nn.Module | None, logits: torch.Tensor) -> torch.Tensor:
        """The full router distribution ``[N, E]`` (softmax of the logits unless the family differs)."""
        return torch.softmax(logits.float(), dim=-1)

    def validate_steering(self, router: nn.Module, activate: list[int], deactivate: list[int]) -> str | None:
        """Family-specific checks on one layer's steering sets; returns a problem or None."""
        return None
