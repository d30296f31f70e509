"""Expert edits: what an intervention asks the router to do, independent of any engine (DESIGN §1.3, §1.7).

An :class:`ExpertEdit` holds boolean masks of experts to force into every token's top-k (``activate``) or
out of it (``deactivate``) and an optional additive ``shift`` (soft steering), each of shape ``[E]`` (one
layer, every token) or ``[N, E]`` (per token, e.g. per request). Adapters turn an edit into routing with
their family's own rule (:meth:`moeguard.adapters.RoutingAdapter.edited_route`); :func:`edit_scores` is
SteerMoE's edit of steering-space scores that most families share:

* ``r = scores + shift`` (soft steering, if any);
* activated experts get ``max(r) + margin``, deactivated ones ``min(r) - margin`` (bounds of the unedited
  ``r``, per token), so they rank first / last whatever the router preferred.

Several edits on one layer (nested steering, training noise under steering) combine in registration order:
a later edit overrides an earlier one for the experts it names, and shifts add up.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

#: Margin SteerMoE puts above the maximum (activate) or below the minimum (deactivate) score.
STEER_MARGIN = 0.01


class ExpertEdit:
    """Experts to force on / off, and a soft score shift, for one MoE layer.

    Args:
        activate: bool ``[E]`` or ``[N, E]``: experts put into the top-k of every (or each) token.
        deactivate: bool ``[E]`` or ``[N, E]``: experts removed from it.
        shift: float ``[E]`` or ``[N, E]`` added to the steering-space scores before selection.
    """

    __slots__ = ("activate", "deactivate", "shift", "_on_device")

    def __init__(
        self,
        activate: torch.Tensor | None = None,
        deactivate: torch.Tensor | None = None,
        shift: torch.Tensor | None = None,
        drop_empty: bool = True,
    ):
        if drop_empty:  # an all-False mask is no edit (checked once, on the host, not per call)
            activate = activate if activate is not None and bool(activate.any()) else None
            deactivate = deactivate if deactivate is not None and bool(deactivate.any()) else None
        self.activate = activate
        self.deactivate = deactivate
        self.shift = shift
        self._on_device: dict[torch.device, ExpertEdit] = {}

    @classmethod
    def from_experts(
        cls,
        num_experts: int,
        activate: Sequence[int] = (),
        deactivate: Sequence[int] = (),
        alpha: float | None = None,
    ) -> ExpertEdit:
        """Hard edit of the listed experts, or (``alpha`` given) a soft shift of ``+alpha`` / ``-alpha``."""
        masks = []
        for experts in (activate, deactivate):
            mask = torch.zeros(num_experts, dtype=torch.bool)
            mask[list(experts)] = True
            masks.append(mask)
        if alpha is None:
            return cls(activate=masks[0], deactivate=masks[1])
        shift = alpha * masks[0].to(torch.float32) - alpha * masks[1].to(torch.float32)
        return cls(shift=shift)

    @property
    def is_hard(self) -> bool:
        """Whether the edit forces experts on or off (not only shifts scores)."""
        return self.activate is not None or self.deactivate is not None

    @property
    def is_empty(self) -> bool:
        return not self.is_hard and self.shift is None

    def to(self, device: torch.device) -> ExpertEdit:
        """This edit with its tensors on ``device`` (cached)."""
        if self._device() == device:
            return self
        if device not in self._on_device:

            def move(t):
                return None if t is None else t.to(device)

            self._on_device[device] = ExpertEdit(
                move(self.activate), move(self.deactivate), move(self.shift), drop_empty=False
            )
        return self._on_device[device]

    def _device(self) -> torch.device | None:
        for tensor in (self.activate, self.deactivate, self.shift):
            if tensor is not None:
                return tensor.device
        return None

    def __repr__(self) -> str:
        def show(mask):
            return None if mask is None else mask.nonzero().flatten().tolist() if mask.dim() == 1 else "per-token"

        soft = self.shift is not None
        return f"ExpertEdit(activate={show(self.activate)}, deactivate={show(self.deactivate)}, soft={soft})"


def combine(edits: Sequence[ExpertEdit]) -> ExpertEdit:
    """One edit equivalent to applying ``edits`` in order (later ones win for the experts they name)."""
    if len(edits) == 1:
        return edits[0]
    activate = deactivate = shift = None
    for edit in edits:
        if edit.shift is not None:
            shift = edit.shift if shift is None else shift + edit.shift
        if edit.activate is not None:
            activate = edit.activate if activate is None else activate | edit.activate
            if deactivate is not None:
                deactivate = deactivate & ~edit.activate
        if edit.deactivate is not None:
            deactivate = edit.deactivate if deactivate is None else deactivate | edit.deactivate
            if activate is not None:
                activate = activate & ~edit.deactivate
    return ExpertEdit(activate, deactivate, shift, drop_empty=False)


def edit_scores(scores: torch.Tensor, edit: ExpertEdit, margin: float = STEER_MARGIN) -> torch.Tensor:
    """SteerMoE's edit of steering-space scores ``[N, E]`` (see the module docstring)."""
    if edit.shift is not None:
        scores = scores + edit.shift.to(scores.dtype)
    if not edit.is_hard:
        return scores
    # both bounds come from the unedited scores (one reduction for both)
    low, high = torch.aminmax(scores, dim=-1, keepdim=True)
    edited = scores
    if edit.activate is not None:
        edited = torch.where(edit.activate, high + margin, edited)
    if edit.deactivate is not None:
        edited = torch.where(edit.deactivate, low - margin, edited)
    return edited
