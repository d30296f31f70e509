"""Routing of paired conversations on their target spans (the reader detection and capture share).

``route_pairs`` validates and encodes the pairs batch by batch (chat template, target span located by
tokenizer offsets), runs each side through the model with a :class:`~moeguard.routing.RoutingRecorder`
selecting the span tokens, and yields one :class:`PairBatch` per (batch, side): a
:class:`~moeguard.routing.RoutingTrace` with one sample per conversation. Detection turns the batches into
counts; ``moeguard capture --pairs`` keeps them, so detection from the capture sees exactly the same routing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice

import torch

from moeguard.adapters import MoEModel
from moeguard.data import EncodedSide, Pair, Side, encode_side, pair_from_record, pair_record_json
from moeguard.routing.recorder import RoutingRecorder
from moeguard.routing.trace import RoutingTrace
from moeguard.routing.unwrap import routing_forward_kwargs

SIDES: tuple[Side, Side] = ("a", "b")


@dataclass
class PairBatch:
    """The span routing of one side of a batch of pairs: ``pair_ids[i]`` is sample ``i`` of ``trace``.

    ``keys[i]`` is the SHA-256 of pair ``pair_ids[i]``'s canonical JSON line: equal keys mean identical pairs.
    """

    pair_ids: list[int]
    side: str
    trace: RoutingTrace
    keys: list[str]


def batched(items: Iterable, size: int) -> Iterator[list]:
    """Consecutive lists of ``size`` items (the last may be shorter)."""
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def _padded(encoded: list[EncodedSide], pad_id: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded ids, attention mask and span mask (real tokens never attend to pads)."""
    length = max(len(e.input_ids) for e in encoded)
    ids = torch.full((len(encoded), length), pad_id, dtype=torch.long)
    attention = torch.zeros_like(ids)
    span = torch.zeros_like(ids, dtype=torch.bool)
    for row, e in enumerate(encoded):
        n = len(e.input_ids)
        ids[row, :n] = torch.tensor(e.input_ids)
        attention[row, :n] = 1
        span[row, :n] = torch.tensor(e.span_mask)
    return ids, attention, span


def encoded_pair_batches(
    tokenizer, pairs: Iterable[Pair | dict], batch_size: int = 8, digest: hashlib._Hash | None = None
) -> Iterator[tuple[list[int], Side, list[EncodedSide], list[str]]]:
    """Validated and encoded pairs, ``(pair ids, side, encoded conversations, pair keys)`` per batch and side
    (A then B). ``keys[i]`` is the SHA-256 of the pair's canonical JSON line (equal keys: identical pairs);
    ``digest`` is updated with every line. Every engine's pair routing reads these."""
    seen = 0
    for batch in batched(pairs, batch_size):
        ids_of_batch = list(range(seen, seen + len(batch)))
        checked = [pair_from_record(p, f"pair {i}") for i, p in zip(ids_of_batch, batch, strict=True)]
        lines = [(pair_record_json(pair) + "\n").encode("utf-8") for pair in checked]
        keys = [hashlib.sha256(line).hexdigest() for line in lines]
        if digest is not None:
            for line in lines:
                digest.update(line)
        for side in SIDES:
            encoded = [encode_side(tokenizer, pair, side, i) for i, pair in zip(ids_of_batch, checked, strict=True)]
            yield ids_of_batch, side, encoded, keys
        seen += len(batch)


@torch.no_grad()
def route_pairs(
    moe: MoEModel,
    tokenizer,
    pairs: Iterable[Pair | dict],
    batch_size: int = 8,
    digest: hashlib._Hash | None = None,
    weights: bool = False,
) -> Iterator[PairBatch]:
    """Span routing of every pair, side A then side B of each batch (see the module docstring).

    ``digest`` is updated with every pair's canonical JSON line (the data identity of the run); each batch
    carries the SHA-256 of every pair's line (``keys``) so that identical pairs can be recognised. The model is
    put in eval mode while the generator runs (dropout would make routing depend on chance).
    """
    pad_id = int(tokenizer.pad_token_id) if tokenizer.pad_token_id is not None else 0
    recorder = RoutingRecorder(moe, counts=False, traces=True, weights=weights)
    kwargs = routing_forward_kwargs(moe.model)
    model = moe.model
    was_training = model.training
    model.eval()
    try:
        with recorder:
            for ids_of_batch, side, encoded, keys in encoded_pair_batches(tokenizer, pairs, batch_size, digest):
                ids, attention, span = _padded(encoded, pad_id)
                recorder.reset()
                recorder.run(ids, attention, count_mask=span, **kwargs)
                trace = recorder.last
                trace.indices = trace.indices.cpu()
                if trace.weights is not None:
                    trace.weights = trace.weights.cpu()
                yield PairBatch(ids_of_batch, side, trace, keys)
    finally:
        model.train(was_training)
