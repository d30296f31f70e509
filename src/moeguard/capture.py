"""Routing capture: streaming expert counts and full per-token routing traces.

>>> recorder = RoutingRecorder(model, traces=True)
>>> with recorder:
...     recorder.run(input_ids, attention_mask)          # pad tokens never counted
>>> recorder.counts        # [moe_layers, experts] top-k selections over counted tokens
>>> recorder.tokens        # tokens counted
>>> recorder.samples()     # per sample: indices/weights [moe_layers, T_i, k] (+ probs/logits)

Counts are accumulated on the model's device without host synchronisation, so memory does not grow
with the amount of data; traces keep every forward call and are opt-in.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from moeguard.adapters import MoEModel, inspect_moe
from moeguard.errors import MoeguardError


@dataclass
class ForwardTrace:
    """Routing of one forward call: tensors ``[moe_layers, B, T, ...]`` plus the counted-token mask."""

    indices: torch.Tensor
    weights: torch.Tensor
    mask: torch.Tensor
    probs: torch.Tensor | None = None
    logits: torch.Tensor | None = None


class RoutingRecorder:
    """Records the routing of every MoE layer while active (use as a context manager).

    Args:
        model: a loaded transformers MoE model (or an ``MoEModel`` from ``inspect_moe``).
        counts: accumulate per-(layer, expert) top-k counts over counted tokens.
        traces: keep per-token indices and weights of every forward call.
        probs: also keep the full router distribution ``[.., E]`` in traces.
        logits: also keep raw router logits ``[.., E]`` in traces.
        detach: detach kept tensors (set False to backpropagate through kept logits).
    """

    def __init__(
        self,
        model: nn.Module | MoEModel,
        counts: bool = True,
        traces: bool = False,
        probs: bool = False,
        logits: bool = False,
        detach: bool = True,
    ):
        self.moe = model if isinstance(model, MoEModel) else inspect_moe(model)
        self.keep_counts = counts
        self.keep_traces = traces or probs or logits
        self.keep_probs = probs
        self.keep_logits = logits
        self.detach = detach
        self.layers = self.moe.layers
        self._position = {layer: i for i, layer in enumerate(self.layers)}
        self._handles: list = []
        self.token_mask: torch.Tensor | None = None
        self.reset()

    # ------------------------------------------------------------------ state
    def reset(self) -> None:
        """Forget everything recorded so far."""
        self._counts: torch.Tensor | None = None
        self._tokens: torch.Tensor | None = None
        self.traces: list[ForwardTrace] = []
        self._pending: dict[int, tuple] = {}

    @property
    def counts(self) -> torch.Tensor:
        """``[moe_layers, experts]`` int64 on CPU: times each expert was in a counted token's top-k."""
        if self._counts is None:
            return torch.zeros(len(self.layers), self.moe.num_experts, dtype=torch.long)
        return self._counts.cpu()

    @property
    def tokens(self) -> int:
        """Number of counted tokens (the same for every layer)."""
        return 0 if self._tokens is None else int(self._tokens.item())

    # ------------------------------------------------------------------ hooks
    def __enter__(self) -> RoutingRecorder:
        if self._handles:
            raise RuntimeError("RoutingRecorder is already active")
        for layer in self.layers:
            router = self.moe.routers[layer]
            self._handles.append(router.register_forward_hook(self._make_hook(layer)))
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self._pending = {}

    def _make_hook(self, layer: int):
        position = self._position[layer]

        def hook(module, args, output):
            logits, weights, indices = output
            self._record(position, module, logits, weights, indices)

        return hook

    def _flat_mask(self, n_tokens: int, device: torch.device) -> torch.Tensor:
        mask = self.token_mask
        if mask is None:
            return torch.ones(n_tokens, dtype=torch.bool, device=device)
        flat = mask.reshape(-1)
        if flat.numel() != n_tokens:
            raise MoeguardError(
                f"token mask has {flat.numel()} entries but the router saw {n_tokens} tokens; "
                "set recorder.token_mask to a [batch, seq] mask of the current forward call"
            )
        return flat.to(device=device, dtype=torch.bool)

    def _record(self, position: int, router, logits, weights, indices) -> None:
        n_tokens, k = indices.shape
        mask = self._flat_mask(n_tokens, indices.device)
        if self.keep_counts:
            if self._counts is None:
                shape = (len(self.layers), self.moe.num_experts)
                self._counts = torch.zeros(shape, dtype=torch.long, device=indices.device)
                self._tokens = torch.zeros((), dtype=torch.long, device=indices.device)
            if self._counts.device != indices.device:  # pipeline-parallel models: gather on the first device
                indices, mask = indices.to(self._counts.device), mask.to(self._counts.device)
            hits = mask.long().unsqueeze(-1).expand(n_tokens, k).reshape(-1)
            self._counts[position].index_add_(0, indices.reshape(-1), hits)
            if position == 0:
                self._tokens += mask.sum()
        if self.keep_traces:
            keep = (lambda t: t.detach()) if self.detach else (lambda t: t)
            probs = self.moe.adapter.probabilities(router, logits) if self.keep_probs else None
            self._pending[position] = (
                keep(indices),
                keep(weights),
                keep(probs) if probs is not None else None,
                keep(logits) if self.keep_logits else None,
            )
            if len(self._pending) == len(self.layers):
                self._flush_trace(mask)

    def _flush_trace(self, mask: torch.Tensor) -> None:
        shape = self.token_mask.shape if self.token_mask is not None else (1, mask.numel())
        rows = [self._pending[i] for i in range(len(self.layers))]
        self._pending = {}

        def stack(j):
            if rows[0][j] is None:
                return None
            return torch.stack([r[j].to(rows[0][j].device) for r in rows]).reshape(len(rows), *shape, -1)

        self.traces.append(
            ForwardTrace(indices=stack(0), weights=stack(1), probs=stack(2), logits=stack(3), mask=mask.reshape(shape))
        )

    # ------------------------------------------------------------------ convenience
    @torch.no_grad()
    def run(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        count_mask: torch.Tensor | None = None,
    ):
        """One forward pass recording the routing; counts tokens where ``count_mask`` (default:
        ``attention_mask``, so pads are never counted) is true. Returns the model output."""
        if not self._handles:
            raise RuntimeError("use the recorder as a context manager: `with recorder: recorder.run(...)`")
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        mask = count_mask if count_mask is not None else attention_mask
        self.token_mask = mask.bool() & attention_mask.bool()
        try:
            device = input_device(self.moe.model)
            return self.moe.model(input_ids=input_ids.to(device), attention_mask=attention_mask.to(device))
        finally:
            self.token_mask = None

    def samples(self) -> list[dict[str, torch.Tensor]]:
        """Per sample of every recorded call, the counted tokens only: ``indices``/``weights``
        ``[moe_layers, T_i, k]`` (+ ``probs``/``logits`` ``[moe_layers, T_i, E]``) on CPU."""
        out = []
        for trace in self.traces:
            for b in range(trace.mask.shape[0]):
                keep = trace.mask[b].to(trace.indices.device)
                sample = {"indices": trace.indices[:, b][:, keep].cpu(), "weights": trace.weights[:, b][:, keep].cpu()}
                if trace.probs is not None:
                    sample["probs"] = trace.probs[:, b][:, keep].cpu()
                if trace.logits is not None:
                    sample["logits"] = trace.logits[:, b][:, keep].cpu()
                out.append(sample)
        return out


def input_device(model: nn.Module) -> torch.device:
    """Where the model's input ids must go: the input embeddings' device (first parameter's otherwise)."""
    embeddings = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    if embeddings is not None:
        return embeddings.weight.device
    return next(model.parameters()).device


def counts_from_samples(samples: list[dict[str, torch.Tensor]], num_experts: int) -> torch.Tensor:
    """``[moe_layers, experts]`` counts derived from full traces (for cross-checking streaming counts)."""
    total = None
    for sample in samples:
        idx = sample["indices"]
        per_layer = torch.stack([torch.bincount(row.reshape(-1), minlength=num_experts) for row in idx])
        total = per_layer if total is None else total + per_layer
    return total
