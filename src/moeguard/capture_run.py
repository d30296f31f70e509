"""Capture routing to disk (the library side of ``moeguard capture``).

``record_prompts`` records every token of every prompt (chat template + generation prompt);
``record_pairs`` records the target spans of both sides of every pair, exactly as detection counts them.
Both return a :class:`~moeguard.routing.RoutingTrace` (the HF backend's capture); ``capture_prompts`` /
``capture_pairs`` also write ``routing.safetensors`` (a :class:`~moeguard.routing.RoutingTrace`) and ``counts.csv``
(``layer, expert, count, tokens``) into the output folder; the trace feeds ``detect --from-capture``,
``drift`` and ``safemoe reference --from-capture`` without re-running the model.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from contextlib import nullcontext
from pathlib import Path

import torch

from moeguard.adapters import inspect_moe
from moeguard.artifacts import run_metadata, sha256_of, write_csv_atomic
from moeguard.chat import Prompt, encode_prompts
from moeguard.data import Pair
from moeguard.pair_routing import route_pairs
from moeguard.pair_stats import cluster_ids
from moeguard.progress import maybe_progress
from moeguard.routing.recorder import RoutingRecorder
from moeguard.routing.shape import MoEShape
from moeguard.routing.trace import TRACE_FILE, RoutingTrace, trace_with_sequences
from moeguard.routing.unwrap import routing_forward_kwargs
from moeguard.steer import SteeringSpec
from moeguard.tokens import pad_batch, pad_id_of

COUNTS_FILE = "counts.csv"


def write_capture(output: str | Path, trace: RoutingTrace) -> list[Path]:
    """Write ``routing.safetensors`` and ``counts.csv`` of ``trace`` into the folder ``output``."""
    output = Path(output)
    routing = trace.save(output / TRACE_FILE)
    counts = trace.counts()
    tokens = trace.num_rows
    rows = [
        (layer, e, int(counts[p, e]), tokens) for p, layer in enumerate(trace.layers) for e in range(trace.num_experts)
    ]
    return [routing, write_csv_atomic(output / COUNTS_FILE, ["layer", "expert", "count", "tokens"], rows)]


def capture_meta(
    moe: MoEShape, model_name: str | None, steer: SteeringSpec | None, backend: str = "hf", **extra
) -> dict:
    """The metadata of a capture (``backend``: the engine that ran it; ``extra`` joins it)."""
    return run_metadata(
        model_name,
        model_type=moe.summary()["model_type"],
        family=moe.family,
        top_k=moe.top_k,
        steering=steer.to_dict() if steer is not None else None,
        backend=backend,
        **extra,
    )


def prompts_meta(
    moe: MoEShape, model_name: str | None, steer: SteeringSpec | None, sequences: list[list[int]], **extra
) -> dict:
    """The metadata of a capture of prompts (every token of every prompt)."""
    return capture_meta(
        moe,
        model_name,
        steer,
        kind="prompts",
        scope="all",
        samples=len(sequences),
        prompts_sha256=sha256_of("\n".join(map(str, sequences))),
        **extra,
    )


def record_prompts(
    model,
    tokenizer,
    prompts: list[Prompt],
    logits: bool = False,
    batch_size: int = 8,
    steer: SteeringSpec | None = None,
    model_name: str | None = None,
    progress: bool = True,
) -> RoutingTrace:
    """Every prompt token's routing (chat template + generation prompt), one sample per prompt."""
    moe = inspect_moe(model)
    recorder = RoutingRecorder(moe, counts=False, traces=True, logits=logits)
    sequences = encode_prompts(tokenizer, prompts)
    kwargs = routing_forward_kwargs(model)
    chunks = []
    with (
        recorder,
        steer.apply(moe) if steer is not None else nullcontext(),
        torch.no_grad(),
        maybe_progress(progress) as bar,
    ):
        task = bar.add_task("capturing routing", total=len(sequences))
        for start in range(0, len(sequences), batch_size):
            ids, mask = pad_batch(sequences[start : start + batch_size], pad_id_of(tokenizer), "right")
            recorder.reset()
            recorder.run(ids, mask, **kwargs)
            chunk = recorder.last
            chunk.indices = chunk.indices.cpu()
            chunk.weights = chunk.weights.cpu() if chunk.weights is not None else None
            if chunk.logits is not None:
                chunk.logits = chunk.logits.float().cpu()
            chunks.append(chunk)
            bar.advance(task, ids.shape[0])
    trace = trace_with_sequences(RoutingTrace.cat(chunks), sequences)
    trace.meta = prompts_meta(moe, model_name, steer, sequences)
    return trace


def capture_prompts(
    model,
    tokenizer,
    prompts: list[Prompt],
    output: str | Path,
    logits: bool = False,
    batch_size: int = 8,
    steer: SteeringSpec | None = None,
    model_name: str | None = None,
    progress: bool = True,
) -> list[Path]:
    """Record every prompt token's routing; write ``routing.safetensors`` and ``counts.csv``; return the paths."""
    trace = record_prompts(
        model,
        tokenizer,
        prompts,
        logits=logits,
        batch_size=batch_size,
        steer=steer,
        model_name=model_name,
        progress=progress,
    )
    return write_capture(output, trace)


def pair_labels(pair_ids: list[int], side: str) -> dict[str, torch.Tensor]:
    """Per-sample labels of one side of a batch of pairs: ``pair`` and ``side`` (0 = A, 1 = B)."""
    return {"pair": torch.tensor(pair_ids), "side": torch.full((len(pair_ids),), 0 if side == "a" else 1)}


def label_clusters(trace: RoutingTrace, keys: list[str]) -> None:
    """Add the ``cluster`` label (index of the first identical pair) from every pair's key, in pair order."""
    first = torch.tensor(cluster_ids(keys), dtype=torch.long)
    trace.labels["cluster"] = first[trace.labels["pair"]]


def pairs_meta(
    moe: MoEShape, model_name: str | None, steer: SteeringSpec | None, trace: RoutingTrace, data_sha256: str, **extra
) -> dict:
    """The metadata of a capture of pairs."""
    return capture_meta(
        moe,
        model_name,
        steer,
        kind="pairs",
        pairs=int(trace.labels["pair"].max()) + 1,
        data_sha256=data_sha256,
        **extra,
    )


def record_pairs(
    model,
    tokenizer,
    pairs: Iterable[Pair | dict],
    batch_size: int = 8,
    steer: SteeringSpec | None = None,
    model_name: str | None = None,
    progress: bool = True,
    total: int | None = None,
) -> RoutingTrace:
    """The target-span routing of both sides of every pair (labels ``pair``, ``side``: 0 = A, 1 = B, and
    ``cluster``: index of the first identical pair), as ``moeguard detect`` counts it."""
    moe = inspect_moe(model)
    digest = hashlib.sha256()
    chunks = []
    keys: list[str] = []
    with steer.apply(moe) if steer is not None else nullcontext(), maybe_progress(progress) as bar:
        task = bar.add_task("capturing pair routing", total=total)
        for batch in route_pairs(moe, tokenizer, pairs, batch_size, digest=digest, weights=True):
            trace = batch.trace
            trace.labels = pair_labels(batch.pair_ids, batch.side)
            chunks.append(trace)
            if batch.side == "a":
                keys.extend(batch.keys)
            if batch.side == "b":
                bar.advance(task, len(batch.pair_ids))
    trace = RoutingTrace.cat(chunks)
    label_clusters(trace, keys)
    trace.meta = pairs_meta(moe, model_name, steer, trace, digest.hexdigest())
    return trace


def capture_pairs(
    model,
    tokenizer,
    pairs: Iterable[Pair | dict],
    output: str | Path,
    batch_size: int = 8,
    steer: SteeringSpec | None = None,
    model_name: str | None = None,
    progress: bool = True,
    total: int | None = None,
) -> list[Path]:
    """Record the target-span routing of both sides of every pair and write ``routing.safetensors`` and
    ``counts.csv`` (see :func:`record_pairs`)."""
    trace = record_pairs(
        model,
        tokenizer,
        pairs,
        batch_size=batch_size,
        steer=steer,
        model_name=model_name,
        progress=progress,
        total=total,
    )
    return write_capture(output, trace)
