"""Seeded routing noise for training: random expert dropout and forcing, as edits through the adapters.

Each ``resample()`` (one training step) switches every expert of every layer off with probability ``p``
and, with probability ``force`` per layer, forces one random expert into the top-k — the same
SteerMoE edits as steering (:mod:`moeguard.routing.edits`), so a model trained under this noise is
robust to exactly the interventions it is later tested with. ``route`` / ``switch_off`` replace or extend
one step's noise with chosen experts (e.g. style-routed batches, replay with aligned experts off).
Draws come from a private ``torch.Generator`` seeded by ``seed``: the noise sequence is reproducible.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from moeguard.adapters import MoEModel, inspect_moe
from moeguard.routing.edits import ExpertEdit
from moeguard.routing.hooks import HookHandle, RouterHooks


class RoutingNoise:
    """Per-step random expert dropout / forcing on every MoE layer (use ``with noise:`` or install/remove)."""

    def __init__(self, model: nn.Module | MoEModel, p: float, seed: int, force: float = 0.0):
        self.moe = model if isinstance(model, MoEModel) else inspect_moe(model)
        self.p = p
        self.force = force
        self.generator = torch.Generator().manual_seed(seed + 7919)
        #: ``{layer: (switched-off mask [E], forced expert or None)}`` of the current step.
        self.masks: dict[int, tuple[torch.Tensor, int | None]] = {}
        self._edits: dict[int, ExpertEdit | None] = {}
        self._handles: list[HookHandle] = []

    # ------------------------------------------------------------------ the step's noise
    def resample(self) -> None:
        """Draw this step's noise."""
        e, k = self.moe.num_experts, self.moe.top_k
        for layer in self.moe.layers:
            drop = torch.rand(e, generator=self.generator) < self.p
            forced = int(torch.randint(e, (1,), generator=self.generator))
            use_force = float(torch.rand(1, generator=self.generator)) < self.force
            if use_force:
                drop[forced] = False
            if int((~drop).sum()) < k:
                drop[:] = False
            self.masks[layer] = (drop, forced if use_force else None)
        self._rebuild()

    def route(self, forced: Sequence[tuple[int, int]], off: Sequence[tuple[int, int]]) -> None:
        """Replace this step's noise: force the ``forced`` (layer, expert) in, switch ``off`` out."""
        self.masks = {layer: (torch.zeros(self.moe.num_experts, dtype=torch.bool), None) for layer in self.moe.layers}
        for layer, expert in off:
            self.masks[layer][0][expert] = True
        for layer, expert in forced:
            self.masks[layer] = (self.masks[layer][0], expert)
        self._rebuild()

    def switch_off(self, experts: Sequence[tuple[int, int]]) -> None:
        """Also switch these (layer, expert) off in the current step."""
        for layer, expert in experts:
            drop, forced = self.masks[layer]
            drop[expert] = True
            self.masks[layer] = (drop, None if forced == expert else forced)
        self._rebuild()

    def clear(self) -> None:
        """No noise until the next ``resample`` / ``route``."""
        self.masks = {}
        self._rebuild()

    def _rebuild(self) -> None:
        self._edits = {}
        for layer, (drop, forced) in self.masks.items():
            activate = None
            if forced is not None:
                activate = torch.zeros(self.moe.num_experts, dtype=torch.bool)
                activate[forced] = True
            edit = ExpertEdit(activate=activate, deactivate=drop)
            self._edits[layer] = None if edit.is_empty else edit

    # ------------------------------------------------------------------ installation
    def install(self) -> RoutingNoise:
        """Register the noise as an edit of every MoE layer (until ``remove``)."""
        if not self._handles:
            hooks = RouterHooks.of(self.moe)
            self._handles = [hooks.add_edit(layer, self._source(layer)) for layer in self.moe.layers]
        return self

    def _source(self, layer: int):
        return lambda: self._edits.get(layer)

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def __enter__(self) -> RoutingNoise:
        return self.install()

    def __exit__(self, *exc) -> None:
        self.remove()
