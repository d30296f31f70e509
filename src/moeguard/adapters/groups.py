"""Group-limited selection (DeepSeek-V2/V3 and relatives): keep the best expert groups, choose inside them.

The model's rule, per token: group scores (``top2sum``: the sum of a group's two best scores; ``max``: its best
score), the ``topk_group`` best groups kept, every expert outside them set to ``fill`` (``-inf``, or ``0.0``
for the families that mask that way), then the top-k of what is left.

Under a hard SteerMoE edit the groups are still chosen **on the model's own scores**, so deactivating an
expert removes only that expert:

* a group holding an activated expert is always kept (its score is forced to ``+inf``);
* if the kept groups hold fewer than k experts that are not deactivated, the next-best groups are added
  until they do (the model's order of groups otherwise);
* inside the allowed groups activated experts are forced in (``+inf``) and deactivated ones out (``-inf``).
"""

from __future__ import annotations

import torch

from moeguard.adapters.base import force_choice
from moeguard.routing.edits import ExpertEdit


def group_scores(scores: torch.Tensor, n_group: int, how: str) -> torch.Tensor:
    """``[N, G]`` group scores of ``scores [N, E]`` (``how``: ``top2sum`` or ``max``)."""
    grouped = scores.view(-1, n_group, scores.shape[-1] // n_group)
    if how == "max":
        return grouped.max(dim=-1).values
    return grouped.topk(2, dim=-1)[0].sum(dim=-1)


def limit_to_groups(
    choice: torch.Tensor,
    group_source: torch.Tensor,
    n_group: int,
    topk_group: int,
    k: int,
    how: str = "top2sum",
    fill: float = float("-inf"),
    sorted_groups: bool = False,
    edit: ExpertEdit | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(choice with experts outside the kept groups at fill [N, E], the kept-expert mask [N, E])``.

    Groups are ranked on ``group_source`` (the model's own scores); ``edit`` forces its experts and groups as
    the module docstring says (None: the model's rule exactly, with the model's own tensor operations).
    """
    per_group = choice.shape[-1] // n_group
    scores_g = group_scores(group_source, n_group, how)
    available = None
    if edit is not None and edit.activate is not None:
        scores_g = scores_g.masked_fill(edit.activate.reshape(-1, n_group, per_group).any(dim=-1), float("inf"))
    if edit is not None and edit.deactivate is not None:
        available = per_group - edit.deactivate.reshape(-1, n_group, per_group).sum(dim=-1)
    group_idx = torch.topk(scores_g, k=topk_group, dim=-1, sorted=sorted_groups)[1]
    group_mask = torch.zeros_like(scores_g)
    group_mask.scatter_(1, group_idx, 1)
    kept = group_mask.bool()
    if available is not None:
        kept = _enough_groups(kept, scores_g, available, topk_group, k)
    mask = kept.unsqueeze(-1).expand(-1, n_group, per_group).reshape(-1, n_group * per_group)
    limited = choice.masked_fill(~mask, fill)
    if edit is not None:
        limited = force_choice(limited, edit)
    return limited, mask


def _enough_groups(kept, scores_g, available, topk_group: int, k: int):
    """Add the next-best groups where the kept ones hold fewer than k experts that are not deactivated.

    No host synchronisation (no branch on tensor values): the same code runs inside compiled graphs, e.g.
    vLLM's router wrapper (:mod:`moeguard.backends.vllm`)."""
    enough = (available * kept).sum(dim=-1, keepdim=True) >= k
    order = torch.sort(scores_g, dim=-1, descending=True, stable=True).indices
    sorted_available = available.expand_as(scores_g).gather(1, order)
    before = sorted_available.cumsum(dim=-1) - sorted_available
    rank = torch.arange(scores_g.shape[-1], device=scores_g.device).expand_as(order)
    take = (rank < topk_group) | (before < k)
    extended = torch.zeros_like(kept).scatter_(1, order, take)
    return torch.where(enough, kept, extended)


def groups_of(experts: list[int], num_experts: int, n_group: int) -> set[int]:
    """The groups that ``experts`` belong to."""
    per_group = num_experts // n_group
    return {e // per_group for e in experts}
