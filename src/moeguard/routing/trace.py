"""``RoutingTrace``: recorded routing in one axis order, with counts and a versioned file format.

Rows are recorded tokens, sample after sample (a sample is one conversation / prompt / sequence); every
per-row tensor has axis order ``[rows, moe_layers, ...]``:

* ``indices [N, L, k]`` int64: the experts selected at each row (what the experts module received);
* ``weights [N, L, k]``: their routing weights (optional);
* ``logits [N, L, E]`` float32: the raw router logits (optional; probabilities via the adapter);
* ``input_ids [N]`` / ``positions [N]``: the token and its position in its sequence (optional);
* ``lengths [S]``: rows of each sample (``sum(lengths) == N``; a sample may have none);
* ``tokens`` / ``token_lengths``: the full token sequences that were run (optional, to replay them);
* ``labels``: per-sample integer tensors ``[S]`` (e.g. ``pair`` and ``side`` for a capture of pairs).

Row ``p`` of the layer axis is decoder layer ``layers[p]``. ``save`` writes safetensors with a format tag
and version in the metadata; ``load`` reads it back (one-line errors for foreign or newer files).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from moeguard.errors import MoeguardError

TRACE_FORMAT = "moeguard.routing-trace"
TRACE_VERSION = "2"
TRACE_FILE = "routing.safetensors"


def hit_counts(
    indices: torch.Tensor,
    num_experts: int,
    groups: torch.Tensor | None = None,
    num_groups: int = 1,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """How often each expert occurs in ``indices [..., k]``: ``[num_groups, E]`` int64.

    ``groups [...]`` (the shape of ``indices`` without ``k``) assigns every row to a group; without it all
    rows count into group 0. With ``out`` (``[num_groups, E]`` or ``[E]``), counts are added to it in place
    on its device, without a host synchronisation.
    """
    flat = indices.reshape(-1).long()
    if groups is not None:
        offsets = (groups.long().unsqueeze(-1) * num_experts).expand(indices.shape).reshape(-1)
        flat = flat + offsets.to(flat.device)
    if out is None:
        out = torch.zeros(num_groups, num_experts, dtype=torch.long, device=flat.device)
    target = out.view(-1)
    flat = flat.to(target.device)
    target.index_add_(0, flat, torch.ones_like(flat, dtype=target.dtype))
    return out


def _flat_lengths(sequences: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([len(s) for s in sequences], dtype=torch.long)
    flat = torch.tensor([int(t) for s in sequences for t in s], dtype=torch.long)
    return flat, lengths


@dataclass
class RoutingTrace:
    """Recorded routing (see the module docstring for every field)."""

    indices: torch.Tensor
    lengths: torch.Tensor
    layers: list[int]
    num_experts: int
    weights: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    input_ids: torch.Tensor | None = None
    positions: torch.Tensor | None = None
    tokens: torch.Tensor | None = None
    token_lengths: torch.Tensor | None = None
    labels: dict[str, torch.Tensor] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.lengths = torch.as_tensor(self.lengths, dtype=torch.long)
        if self.indices.dim() != 3 or self.indices.shape[1] != len(self.layers):
            raise MoeguardError(
                f"routing indices {tuple(self.indices.shape)} are not [rows, {len(self.layers)} layers, k]"
            )
        if int(self.lengths.sum()) != self.indices.shape[0]:
            raise MoeguardError(
                f"sample lengths sum to {int(self.lengths.sum())} but the trace has {self.indices.shape[0]} rows"
            )
        for name in ("weights", "logits", "input_ids", "positions"):
            tensor = getattr(self, name)
            if tensor is not None and tensor.shape[0] != self.indices.shape[0]:
                raise MoeguardError(f"trace {name} has {tensor.shape[0]} rows, indices {self.indices.shape[0]}")
        for name, tensor in self.labels.items():
            if tensor.shape != self.lengths.shape:
                raise MoeguardError(f"trace label {name!r} has shape {tuple(tensor.shape)}, expected one per sample")

    # ------------------------------------------------------------------ shape
    @property
    def num_rows(self) -> int:
        return int(self.indices.shape[0])

    @property
    def num_samples(self) -> int:
        return int(self.lengths.shape[0])

    @property
    def top_k(self) -> int:
        return int(self.indices.shape[-1])

    @property
    def offsets(self) -> torch.Tensor:
        """``[S + 1]`` start row of every sample, then the number of rows."""
        return torch.cat([torch.zeros(1, dtype=torch.long), self.lengths.cumsum(0)])

    @property
    def sample_of_row(self) -> torch.Tensor:
        """``[N]`` the sample each row belongs to."""
        return torch.repeat_interleave(torch.arange(self.num_samples), self.lengths)

    @property
    def sequences(self) -> list[list[int]] | None:
        """The token sequences that were run, one list per sample (None when not recorded)."""
        if self.tokens is None or self.token_lengths is None:
            return None
        return [chunk.tolist() for chunk in torch.split(self.tokens, self.token_lengths.tolist())]

    # ------------------------------------------------------------------ counts
    def counts(self) -> torch.Tensor:
        """``[L, E]`` times each expert was selected over all rows."""
        layer = torch.arange(len(self.layers)).expand(self.num_rows, -1)
        return hit_counts(self.indices.cpu(), self.num_experts, layer, len(self.layers))

    def sample_counts(self) -> torch.Tensor:
        """``[S, L, E]`` times each expert was selected over each sample's rows."""
        n_layers = len(self.layers)
        group = self.sample_of_row.unsqueeze(1) * n_layers + torch.arange(n_layers)
        counts = hit_counts(self.indices.cpu(), self.num_experts, group, self.num_samples * n_layers)
        return counts.view(self.num_samples, n_layers, self.num_experts)

    # ------------------------------------------------------------------ selection
    def _rows(self, rows: torch.Tensor, lengths: torch.Tensor, samples: torch.Tensor | None) -> RoutingTrace:
        def take(tensor):
            return None if tensor is None else tensor[rows]

        sequences = self.sequences
        tokens = token_lengths = None
        if sequences is not None and samples is not None:
            tokens, token_lengths = _flat_lengths([sequences[int(i)] for i in samples])
        elif samples is None:
            tokens, token_lengths = self.tokens, self.token_lengths
        labels = {k: v[samples] for k, v in self.labels.items()} if samples is not None else dict(self.labels)
        return replace(
            self,
            indices=self.indices[rows],
            lengths=lengths,
            weights=take(self.weights),
            logits=take(self.logits),
            input_ids=take(self.input_ids),
            positions=take(self.positions),
            tokens=tokens,
            token_lengths=token_lengths,
            labels=labels,
            meta=dict(self.meta),
        )

    def select_samples(self, samples: Sequence[int] | torch.Tensor) -> RoutingTrace:
        """The samples ``samples`` (in that order, repeats allowed) with all their rows."""
        order = torch.as_tensor(list(samples) if not isinstance(samples, torch.Tensor) else samples, dtype=torch.long)
        starts = self.offsets
        pieces = [torch.arange(int(starts[i]), int(starts[i + 1])) for i in order]
        rows = torch.cat(pieces) if pieces else torch.zeros(0, dtype=torch.long)
        return self._rows(rows, self.lengths[order], order)

    def last_rows(self) -> RoutingTrace:
        """One row per sample: its last one (e.g. the last prompt token). Every sample needs a row."""
        if bool((self.lengths == 0).any()):
            raise MoeguardError("a sample of the trace has no recorded rows; cannot take its last row")
        return self._rows(self.offsets[1:] - 1, torch.ones_like(self.lengths), None)

    def probabilities(self, adapter) -> torch.Tensor:
        """``[N, L, E]`` the router distribution of every row (needs ``logits``)."""
        if self.logits is None:
            raise MoeguardError("this trace has no router logits; capture with logits (--logits) to get them")
        return adapter.probabilities(None, self.logits)

    @classmethod
    def cat(cls, traces: Sequence[RoutingTrace]) -> RoutingTrace:
        """Samples of several traces one after the other (same layers and experts)."""
        if not traces:
            raise MoeguardError("no routing was recorded")
        first = traces[0]
        for other in traces[1:]:
            if (other.layers, other.num_experts) != (first.layers, first.num_experts):
                raise MoeguardError("cannot join traces of different models")

        def join(name):
            values = [getattr(t, name) for t in traces]
            if any(v is None for v in values):
                return None
            return torch.cat(values)

        labels = {}
        for name in first.labels:
            if all(name in t.labels for t in traces):
                labels[name] = torch.cat([t.labels[name] for t in traces])
        return cls(
            indices=torch.cat([t.indices for t in traces]),
            lengths=torch.cat([t.lengths for t in traces]),
            layers=list(first.layers),
            num_experts=first.num_experts,
            weights=join("weights"),
            logits=join("logits"),
            input_ids=join("input_ids"),
            positions=join("positions"),
            tokens=join("tokens"),
            token_lengths=join("token_lengths"),
            labels=labels,
            meta=dict(first.meta),
        )

    def check_model(self, moe, what: str = "routing trace") -> None:
        """One-line error unless ``moe`` has this trace's MoE layers and expert count."""
        if (list(self.layers), self.num_experts) != (list(moe.layers), moe.num_experts):
            raise MoeguardError(
                f"the {what} has MoE layers {self.layers} x {self.num_experts} experts but the model has "
                f"{moe.layers} x {moe.num_experts}; record it on this model"
            )

    # ------------------------------------------------------------------ files
    def save(self, path: str | Path) -> Path:
        """Write safetensors (atomic): tensors as named in the module docstring, ``label.<name>`` for labels."""
        from moeguard.artifacts import save_safetensors_atomic

        tensors: dict[str, torch.Tensor] = {"indices": self.indices.long().cpu(), "lengths": self.lengths.cpu()}
        for name in ("weights", "logits", "input_ids", "positions", "tokens", "token_lengths"):
            tensor = getattr(self, name)
            if tensor is not None:
                tensor = tensor.detach().cpu()
                tensors[name] = tensor.float() if name == "logits" else tensor
        for name, tensor in self.labels.items():
            tensors[f"label.{name}"] = tensor.long().cpu()
        metadata = {
            "format": TRACE_FORMAT,
            "version": TRACE_VERSION,
            "layers": json.dumps(list(self.layers)),
            "num_experts": str(self.num_experts),
            "meta": json.dumps(self.meta, default=str),
        }
        return save_safetensors_atomic(path, tensors, metadata)

    @classmethod
    def load(cls, path: str | Path) -> RoutingTrace:
        """Read a trace written by :meth:`save`; a folder means its ``routing.safetensors``."""
        from safetensors import SafetensorError, safe_open

        path = Path(path)
        if path.is_dir():
            path = path / TRACE_FILE
        if not path.is_file():
            raise MoeguardError(f"routing trace {path} does not exist; write one with 'moeguard capture'")
        try:
            with safe_open(str(path), framework="pt") as handle:
                metadata = dict(handle.metadata() or {})
                tensors = {key: handle.get_tensor(key) for key in handle.keys()}
        except (SafetensorError, OSError, ValueError) as err:
            raise MoeguardError(f"{path} is not a readable safetensors file ({err}); capture again") from None
        if metadata.get("format") != TRACE_FORMAT or "indices" not in tensors:
            raise MoeguardError(f"{path} is not a moeguard routing trace; write one with 'moeguard capture'")
        if metadata.get("version") != TRACE_VERSION:
            raise MoeguardError(
                f"{path} has routing-trace version {metadata.get('version')}, this moeguard reads "
                f"{TRACE_VERSION}; capture again"
            )
        labels = {key.removeprefix("label."): t for key, t in tensors.items() if key.startswith("label.")}
        return cls(
            indices=tensors["indices"],
            lengths=tensors["lengths"],
            layers=[int(x) for x in json.loads(metadata["layers"])],
            num_experts=int(metadata["num_experts"]),
            weights=tensors.get("weights"),
            logits=tensors.get("logits"),
            input_ids=tensors.get("input_ids"),
            positions=tensors.get("positions"),
            tokens=tensors.get("tokens"),
            token_lengths=tensors.get("token_lengths"),
            labels=labels,
            meta=json.loads(metadata.get("meta") or "{}"),
        )


def trace_with_sequences(trace: RoutingTrace, sequences: Sequence[Sequence[int]]) -> RoutingTrace:
    """``trace`` that also records the token sequences that were run (one per sample)."""
    if len(sequences) != trace.num_samples:
        raise MoeguardError(f"{len(sequences)} sequences for a trace of {trace.num_samples} samples")
    tokens, token_lengths = _flat_lengths(sequences)
    return replace(trace, tokens=tokens, token_lengths=token_lengths)
