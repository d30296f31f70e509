"""``RoutingRecorder``: streaming expert counts and routing traces, on top of the hook registry.

>>> recorder = RoutingRecorder(model, traces=True)
>>> with recorder:
...     recorder.run(input_ids, attention_mask)          # pad tokens are never recorded
>>> recorder.counts        # [moe_layers, experts] top-k selections over recorded tokens
>>> recorder.tokens        # tokens recorded
>>> recorder.trace()       # RoutingTrace: indices/weights [rows, moe_layers, k], one sample per sequence

Which tokens are recorded: ``run(..., count_mask=...)`` or ``with recorder.selecting(mask=... | rows=...)``
around your own forward call; without a selection every token of every router call is recorded (e.g.
during ``generate``). Counts accumulate on the model's device without host synchronisation, so memory does
not grow with the amount of data; traces keep the selected rows of every call and are opt-in.
``detach=False`` keeps the autograd graph of recorded logits and weights (routing losses).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from moeguard.adapters import MoEModel, inspect_moe
from moeguard.errors import MoeguardError
from moeguard.routing.hooks import HookHandle, RouterCall, RouterHooks
from moeguard.routing.trace import RoutingTrace, hit_counts
from moeguard.routing.unwrap import input_device


class _Selection:
    """Rows of one forward call to record: flat indices into the router's ``[B*T]`` rows."""

    def __init__(self, rows: torch.Tensor, lengths: torch.Tensor, input_ids=None, positions=None, expected=None):
        self.rows = rows
        self.lengths = lengths
        self.input_ids = input_ids
        self.positions = positions
        self.expected = expected
        self._on: dict[torch.device, torch.Tensor] = {}

    @classmethod
    def from_mask(cls, mask: torch.Tensor, input_ids: torch.Tensor | None = None) -> _Selection:
        mask = mask.bool().cpu()
        if mask.dim() == 1:
            mask = mask.unsqueeze(0)
        rows = mask.reshape(-1).nonzero().squeeze(1)
        width = mask.shape[1]
        ids = input_ids.cpu().reshape(-1)[rows] if input_ids is not None else None
        return cls(rows, mask.sum(dim=1), ids, rows % width, expected=mask.numel())

    def on(self, device: torch.device) -> torch.Tensor:
        if device not in self._on:
            self._on[device] = self.rows.to(device)
        return self._on[device]


class RoutingRecorder:
    """Records the routing of every MoE layer while active (use as a context manager).

    Args:
        model: a loaded transformers MoE model (any wrapper of it, or its ``MoEModel``).
        counts: accumulate per-(layer, expert) top-k counts over recorded tokens.
        traces: keep the routing of recorded tokens (``trace()``).
        weights: keep the top-k weights in traces.
        logits: keep the raw router logits ``[.., E]`` in traces (``probs`` is an alias).
        detach: detach kept tensors (False: keep the autograd graph, e.g. for routing losses).
    """

    def __init__(
        self,
        model: nn.Module | MoEModel,
        counts: bool = True,
        traces: bool = False,
        weights: bool = True,
        logits: bool = False,
        probs: bool = False,
        detach: bool = True,
    ):
        self.moe = model if isinstance(model, MoEModel) else inspect_moe(model)
        self.keep_counts = counts
        self.keep_logits = logits or probs
        self.keep_traces = traces or self.keep_logits
        self.keep_weights = weights
        self.detach = detach
        self.layers = self.moe.layers
        self._handle: HookHandle | None = None
        self._selection: _Selection | None = None
        self.reset()

    # ------------------------------------------------------------------ state
    def reset(self) -> None:
        """Forget everything recorded so far."""
        self._counts: torch.Tensor | None = None
        self._tokens: torch.Tensor | None = None
        self._chunks: list[RoutingTrace] = []
        self._pending: dict[int, tuple] = {}

    @property
    def counts(self) -> torch.Tensor:
        """``[moe_layers, experts]`` int64 on CPU: times each expert was in a recorded token's top-k."""
        if self._counts is None:
            return torch.zeros(len(self.layers), self.moe.num_experts, dtype=torch.long)
        return self._counts.cpu()

    @property
    def tokens(self) -> int:
        """Number of recorded tokens (the same for every layer)."""
        return 0 if self._tokens is None else int(self._tokens.item())

    def trace(self) -> RoutingTrace:
        """Everything recorded so far as one :class:`RoutingTrace` (one sample per recorded sequence)."""
        if not self.keep_traces:
            raise MoeguardError("this recorder keeps no traces; create it with traces=True")
        if not self._chunks:
            raise MoeguardError("nothing was recorded; run the model inside 'with recorder:'")
        return self._chunks[0] if len(self._chunks) == 1 else RoutingTrace.cat(self._chunks)

    @property
    def last(self) -> RoutingTrace:
        """The routing of the most recent forward call."""
        if not self._chunks:
            raise MoeguardError("nothing was recorded; run the model inside 'with recorder:'")
        return self._chunks[-1]

    # ------------------------------------------------------------------ activation
    def __enter__(self) -> RoutingRecorder:
        if self._handle is not None:
            raise RuntimeError("RoutingRecorder is already active")
        self._handle = RouterHooks.of(self.moe).add_reader(self._read, self.layers)
        return self

    def __exit__(self, *exc) -> None:
        if self._handle is not None:
            self._handle.remove()
        self._handle = None
        self._pending = {}

    @contextmanager
    def selecting(
        self,
        mask: torch.Tensor | None = None,
        rows: torch.Tensor | None = None,
        input_ids: torch.Tensor | None = None,
    ) -> Iterator[RoutingRecorder]:
        """Record only these tokens of the forward call(s) inside the block: ``mask [B, T]`` (one sample
        per row) or ``rows`` (flat indices into ``B*T``, one sample each, in the given order)."""
        if (mask is None) == (rows is None):
            raise MoeguardError("give exactly one of mask= or rows= to select recorded tokens")
        if mask is not None:
            self._selection = _Selection.from_mask(mask, input_ids)
        else:
            rows = torch.as_tensor(rows, dtype=torch.long).cpu().reshape(-1)
            self._selection = _Selection(rows, torch.ones_like(rows))
        self._pending = {}
        try:
            yield self
        finally:
            self._selection = None
            self._pending = {}

    # ------------------------------------------------------------------ the reader
    def _read(self, call: RouterCall) -> None:
        indices, logits, weights = call.indices, call.logits, call.weights
        n_tokens = indices.shape[0]
        selection = self._selection
        if selection is not None:
            if selection.expected is not None and selection.expected != n_tokens:
                raise MoeguardError(
                    f"the token selection covers {selection.expected} tokens but the router saw {n_tokens}; "
                    "select with a [batch, seq] mask of the current forward call"
                )
            rows = selection.on(indices.device)
            indices = indices.index_select(0, rows)
            if self.keep_traces:
                if self.keep_logits:
                    logits = logits.reshape(n_tokens, -1).index_select(0, rows.to(logits.device))
                if self.keep_weights:
                    weights = weights.index_select(0, rows.to(weights.device))
        if self.keep_counts:
            if self._counts is None:
                self._counts = torch.zeros(
                    len(self.layers), self.moe.num_experts, dtype=torch.long, device=indices.device
                )
                self._tokens = torch.zeros((), dtype=torch.long, device=indices.device)
            hit_counts(indices, self.moe.num_experts, out=self._counts[call.position])
            if call.position == 0 and self._tokens is not None:
                self._tokens += indices.shape[0]
        if self.keep_traces:
            keep = (lambda t: t.detach()) if self.detach else (lambda t: t)
            self._pending[call.position] = (
                indices.detach(),
                keep(weights) if self.keep_weights else None,
                keep(logits.reshape(indices.shape[0], -1)) if self.keep_logits else None,
            )
            if len(self._pending) == len(self.layers):
                self._flush()

    def _flush(self) -> None:
        parts = [self._pending[p] for p in range(len(self.layers))]
        self._pending = {}
        device = parts[0][0].device

        def stack(j):
            if parts[0][j] is None:
                return None
            return torch.stack([p[j].to(device) for p in parts], dim=1)

        indices = stack(0)
        selection = self._selection
        if selection is not None:
            lengths, ids, positions = selection.lengths, selection.input_ids, selection.positions
        else:
            lengths, ids, positions = torch.tensor([indices.shape[0]]), None, None
        self._chunks.append(
            RoutingTrace(
                indices=indices,
                lengths=lengths,
                layers=list(self.layers),
                num_experts=self.moe.num_experts,
                weights=stack(1),
                logits=stack(2),
                input_ids=ids,
                positions=positions,
            )
        )

    # ------------------------------------------------------------------ convenience
    @torch.no_grad()
    def run(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        count_mask: torch.Tensor | None = None,
        **forward_kwargs,
    ):
        """One forward pass recording the tokens where ``count_mask`` (default: ``attention_mask``, so pads
        are never recorded) is true. Returns the model output."""
        if self._handle is None:
            raise RuntimeError("use the recorder as a context manager: `with recorder: recorder.run(...)`")
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        mask = attention_mask.bool() if count_mask is None else count_mask.bool() & attention_mask.bool()
        device = input_device(self.moe.model)
        with self.selecting(mask=mask, input_ids=input_ids):
            return self.moe.model(
                input_ids=input_ids.to(device), attention_mask=attention_mask.to(device), **forward_kwargs
            )
