"""Reference routing of the aligned model on a safety set of harmful prompts (DESIGN §1.4).

A reference is a :class:`~moeguard.routing.RoutingTrace` (file format ``moeguard.routing-trace``, kind
``safemoe-reference`` in its metadata) holding, for every safety prompt (chat template + generation prompt):

* ``logits`` float32 ``[rows, L, E]`` — router logits of every MoE layer (``L`` = MoE layers in
  decoder-layer order, see ``layers``). Scope ``last``: one row per prompt, the last prompt token (the end
  of the generation prompt). Scope ``all``: every prompt token, prompt after prompt (``lengths``).
* ``indices`` int64 ``[rows, L, k]`` — the experts the router selected at those tokens (for drift).
* ``tokens`` / ``token_lengths`` — the exact token ids that were run, so fine-tuning replays the safety
  set without re-tokenising.
* metadata: ``scope``, ``model``, ``model_type``, ``top_k``, ``prompts_sha256`` and the run metadata.

It is built by running the model (:func:`build_reference`) or from a ``moeguard capture --logits`` of the
same prompts (:meth:`ReferenceRouting.from_trace`), without re-running the model.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from moeguard.adapters import MoEModel, inspect_moe
from moeguard.artifacts import run_metadata, sha256_of
from moeguard.chat import Prompt
from moeguard.errors import MoeguardError
from moeguard.routing.trace import RoutingTrace
from moeguard.safemoe.routing import prompt_routing
from moeguard.tokens import Scope, check_scope

REFERENCE_KIND = "safemoe-reference"


def prompts_sha256(prompts: Sequence[Prompt]) -> str:
    """Identity of a prompt list (order matters)."""
    return sha256_of(json.dumps(list(prompts), ensure_ascii=False, sort_keys=True))


@dataclass
class ReferenceRouting:
    """Cached router logits of the aligned model on the safety set (see the module docstring)."""

    trace: RoutingTrace

    def __post_init__(self) -> None:
        trace = self.trace
        self.scope: Scope = check_scope(trace.meta.get("scope", "last"))
        if trace.logits is None or trace.sequences is None:
            raise MoeguardError(
                "a SafeMoE reference needs router logits and the prompt tokens; capture with --logits or "
                "rebuild it with 'moeguard safemoe reference'"
            )
        if not trace.num_samples:
            raise MoeguardError("the safety set is empty; give at least one harmful prompt")
        if self.scope == "last" and bool((trace.lengths != 1).any()):
            raise MoeguardError("a scope-'last' reference needs exactly one row per prompt; rebuild the file")
        if self.scope == "all" and not torch.equal(trace.lengths, trace.token_lengths):  # type: ignore[arg-type]
            raise MoeguardError("a scope-'all' reference needs one row per prompt token; rebuild the file")
        self.sequences: list[list[int]] = trace.sequences

    @classmethod
    def from_trace(cls, trace: RoutingTrace, scope: Scope = "last", model: str | None = None) -> ReferenceRouting:
        """A reference from a capture of every prompt token (``moeguard capture --logits``)."""
        scope = check_scope(scope)
        if trace.logits is None:
            raise MoeguardError("the capture has no router logits; capture the safety prompts with --logits")
        if trace.sequences is None or not torch.equal(trace.lengths, trace.token_lengths):  # type: ignore[arg-type]
            raise MoeguardError(
                "the capture does not hold every prompt token; capture the safety prompts with 'moeguard capture'"
            )
        picked = trace.last_rows() if scope == "last" else trace
        meta = {**trace.meta, "kind": REFERENCE_KIND, "scope": scope}
        if model is not None:
            meta["model"] = model
        return cls(replace(picked, meta=meta))

    # ------------------------------------------------------------------ views
    @property
    def logits(self) -> torch.Tensor:
        """``[rows, L, E]`` float32 reference router logits."""
        return self.trace.logits  # type: ignore[return-value]

    @property
    def topk(self) -> torch.Tensor:
        """``[rows, L, k]`` experts selected at the reference rows."""
        return self.trace.indices

    @property
    def layers(self) -> list[int]:
        return list(self.trace.layers)

    @property
    def num_experts(self) -> int:
        return self.trace.num_experts

    @property
    def top_k(self) -> int:
        return self.trace.top_k

    @property
    def model(self) -> str | None:
        return self.trace.meta.get("model") or None

    @property
    def model_type(self) -> str | None:
        return self.trace.meta.get("model_type") or None

    @property
    def prompts_sha256(self) -> str:
        return self.trace.meta.get("prompts_sha256", "")

    @property
    def num_prompts(self) -> int:
        """Prompts in the safety set."""
        return self.trace.num_samples

    def rows(self, prompt_indices: Sequence[int]) -> torch.Tensor:
        """Reference rows ``[rows, L, E]`` of the given prompts, in the order the prompts are given."""
        return self.trace.select_samples(prompt_indices).logits  # type: ignore[return-value]

    def topk_rows(self, prompt_indices: Sequence[int]) -> torch.Tensor:
        """Selected experts ``[rows, L, k]`` of the given prompts."""
        return self.trace.select_samples(prompt_indices).indices

    def check_compatible(self, moe: MoEModel, vocab_size: int | None = None) -> None:
        """Raise a one-line MoeguardError unless ``moe`` has this reference's routing shape."""
        model_type = moe.summary()["model_type"]
        ours = (self.model_type, self.layers, self.num_experts)
        theirs = (model_type, moe.layers, moe.num_experts)
        if ours != theirs:
            raise MoeguardError(
                f"reference routing was built for model_type={self.model_type} with MoE layers "
                f"{self.layers} and {self.num_experts} experts, but this model is "
                f"model_type={model_type} with layers {moe.layers} and {moe.num_experts} experts; "
                "rebuild it with 'moeguard safemoe reference' on the aligned version of this model"
            )
        if vocab_size is not None:
            largest = max(max(s) for s in self.sequences)
            if largest >= vocab_size:
                raise MoeguardError(
                    f"reference prompts use token id {largest} but the model's vocabulary has {vocab_size} "
                    "entries; rebuild the reference with this model's tokenizer"
                )

    # ------------------------------------------------------------------ files
    def save(self, path: str | Path) -> Path:
        """Write the reference as safetensors (atomic)."""
        return self.trace.save(path)

    @classmethod
    def load(cls, path: str | Path) -> ReferenceRouting:
        """Read a reference written by ``save`` (one-line errors for missing or foreign files)."""
        path = Path(path)
        if not path.is_file():
            raise MoeguardError(
                f"reference file {path} does not exist; create it with 'moeguard safemoe reference MODEL "
                f"--prompts FILE --output {path}'"
            )
        trace = RoutingTrace.load(path)
        if trace.meta.get("kind") != REFERENCE_KIND:
            raise MoeguardError(f"{path} is not a SafeMoE reference file; create one with 'moeguard safemoe reference'")
        return cls(trace)


def build_reference(
    model,
    tokenizer,
    prompts: Sequence[Prompt],
    scope: Scope = "last",
    batch_size: int = 8,
    model_name: str | None = None,
    padding_side: str = "left",
    progress=None,
) -> ReferenceRouting:
    """Router logits of ``model`` (the aligned model) on every harmful prompt of the safety set.

    Each prompt gets the chat template with the generation prompt; ``scope="last"`` keeps the last
    prompt token, ``scope="all"`` every prompt token. Pads are never selected (either padding side).
    """
    scope = check_scope(scope)
    if not prompts:
        raise MoeguardError("the safety set is empty; give at least one harmful prompt")
    moe = inspect_moe(model)
    trace = prompt_routing(model, tokenizer, prompts, scope, batch_size, padding_side, progress=progress)
    summary = moe.summary()
    trace.meta = {
        **{k: v for k, v in run_metadata(model_name).items() if k != "model"},
        "kind": REFERENCE_KIND,
        "scope": scope,
        "model": model_name or "",
        "model_type": summary["model_type"] or "",
        "prompts_sha256": prompts_sha256(prompts),
    }
    return ReferenceRouting(trace)


def read_safety_prompts(source: str | Path, count: int = 100, seed: int = 0) -> list[Prompt]:
    """Harmful prompts of a safety set: JSONL (``{"prompt": ...}`` or ``{"messages": [...]}`` per line), a
    plain text file (one prompt per line), or a built-in prompt set such as ``builtin:organism-harmful``
    (``count`` training-distribution harmful prompts of the model organism)."""
    from moeguard.builtin import is_builtin, resolve
    from moeguard.prompts import read_prompts

    text = str(source)
    if is_builtin(text):
        return list(resolve("prompts", text, n=count, seed=seed))
    from moeguard.textio import read_text

    path = Path(source)
    lines = [
        line
        for line in read_text(path, "prompt file", "pass JSONL ({'prompt': ...} per line) or text").splitlines()
        if line.strip()
    ]
    if not lines:
        raise MoeguardError(f"prompt file {path} is empty: the safety set needs at least one harmful prompt")
    if path.suffix in (".jsonl", ".json") or lines[0].lstrip().startswith("{"):
        return read_prompts(path)
    return [line.strip() for line in lines]
