"""Capture the routing of a prompt file to disk (the library side of ``moeguard capture``)."""

from __future__ import annotations

import json
from contextlib import nullcontext
from pathlib import Path

import torch

from moeguard.adapters import inspect_moe
from moeguard.artifacts import run_metadata, save_safetensors_atomic, sha256_of, write_csv_atomic
from moeguard.capture import RoutingRecorder
from moeguard.generation import format_prompt, has_chat_template
from moeguard.progress import progress_bar
from moeguard.prompts import Prompt
from moeguard.steer import SteeringSpec


def prompt_text(tokenizer, prompt: Prompt) -> str:
    """A prompt string gets a generation prompt; a message list ending with a user turn does too."""
    if isinstance(prompt, str):
        return format_prompt(tokenizer, prompt, add_generation_prompt=True)
    return format_prompt(tokenizer, prompt, add_generation_prompt=prompt[-1]["role"] == "user")


def capture_prompts(
    model,
    tokenizer,
    prompts: list[Prompt],
    output: str | Path,
    probs: bool = False,
    batch_size: int = 8,
    steer: SteeringSpec | None = None,
    model_name: str | None = None,
) -> list[Path]:
    """Run every prompt, write ``routing.safetensors`` and ``counts.csv`` into ``output``; return paths."""
    output = Path(output)
    moe = inspect_moe(model)
    recorder = RoutingRecorder(moe, counts=True, traces=True, probs=probs)
    texts = [prompt_text(tokenizer, p) for p in prompts]
    tensors: dict[str, torch.Tensor] = {"layers": torch.tensor(moe.layers)}
    side, tokenizer.padding_side = tokenizer.padding_side, "right"
    try:
        with recorder, steer.apply(model) if steer is not None else nullcontext(), progress_bar() as bar:
            task = bar.add_task("capturing routing", total=len(texts))
            for start in range(0, len(texts), batch_size):
                batch = tokenizer(texts[start : start + batch_size], return_tensors="pt", padding=True,
                                  add_special_tokens=not has_chat_template(tokenizer))
                recorder.traces = []
                recorder.run(batch["input_ids"], batch["attention_mask"])
                for offset, sample in enumerate(recorder.samples()):
                    i = start + offset
                    length = int(batch["attention_mask"][offset].sum())
                    tensors[f"{i}.input_ids"] = batch["input_ids"][offset, :length].clone()
                    for key in ("indices", "weights") + (("probs",) if probs else ()):
                        tensors[f"{i}.{key}"] = sample[key]
                bar.advance(task, len(batch["input_ids"]))
    finally:
        tokenizer.padding_side = side
    meta = run_metadata(model_name, samples=len(texts), layers=moe.layers, num_experts=moe.num_experts,
                        top_k=moe.top_k, prompts_sha256=sha256_of("\n".join(texts)),
                        steering=steer.to_dict() if steer is not None else None)
    routing = save_safetensors_atomic(output / "routing.safetensors", tensors,
                                      metadata={k: json.dumps(v) for k, v in meta.items()})
    counts = recorder.counts
    rows = [(layer, e, int(counts[p, e]), recorder.tokens) for p, layer in enumerate(moe.layers)
            for e in range(moe.num_experts)]
    table = write_csv_atomic(output / "counts.csv", ["layer", "expert", "count", "tokens"], rows)
    return [routing, table]
