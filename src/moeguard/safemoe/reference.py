"""Reference routing of the aligned model on a safety set of harmful prompts (DESIGN §1.4).

File format (safetensors, written atomically):

* ``logits`` float32 ``[rows, L, E]`` — router logits of every MoE layer (``L`` = number of MoE layers,
  in decoder-layer order, see metadata ``layers``). Scope ``last``: one row per prompt, the last prompt
  token (the end of the generation prompt). Scope ``all``: one row per prompt token, prompt after
  prompt, tokens in order; prompt ``i`` owns rows ``sum(lengths[:i]) .. sum(lengths[:i+1])``.
* ``topk`` int64 ``[rows, L, k]`` — the experts the router selected at those tokens (for drift).
* ``input_ids`` int64 ``[N, T_max]`` right-padded with 0 and ``lengths`` int64 ``[N]`` — the exact
  tokens that were run, so fine-tuning replays the safety set without re-tokenising.
* metadata (strings): ``format``, ``version``, ``model``, ``model_type``, ``num_experts``, ``top_k``,
  ``layers`` (JSON list), ``scope``, ``num_prompts``, ``prompts_sha256``, ``moeguard_version``,
  ``torch_version``, ``transformers_version``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from moeguard.adapters import MoEModel, inspect_moe
from moeguard.artifacts import run_metadata, save_safetensors_atomic, sha256_of
from moeguard.errors import MoeguardError
from moeguard.prompts import Prompt
from moeguard.safemoe.routing import Scope, check_scope, pad_batch, prompt_routing, unwrap_model

REFERENCE_FORMAT = "moeguard.safemoe.reference"
REFERENCE_VERSION = "1"


def prompts_sha256(prompts: Sequence[Prompt]) -> str:
    """Identity of a prompt list (order matters)."""
    return sha256_of(json.dumps(list(prompts), ensure_ascii=False, sort_keys=True))


@dataclass
class ReferenceRouting:
    """Cached router logits of the aligned model on the safety set (see the module docstring)."""

    logits: torch.Tensor
    topk: torch.Tensor
    sequences: list[list[int]]
    scope: Scope
    layers: list[int]
    num_experts: int
    top_k: int
    model_type: str | None = None
    model: str | None = None
    prompts_sha256: str = ""
    meta: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.scope = check_scope(self.scope)
        if not self.sequences:
            raise MoeguardError("the safety set is empty; give at least one harmful prompt")
        expected = len(self.sequences) if self.scope == "last" else sum(len(s) for s in self.sequences)
        if self.logits.dim() != 3 or self.logits.shape[0] != expected:
            raise MoeguardError(
                f"reference logits {tuple(self.logits.shape)} do not fit {len(self.sequences)} prompts with "
                f"scope {self.scope!r}; rebuild the file with 'moeguard safemoe reference'"
            )
        if self.logits.shape[1:] != (len(self.layers), self.num_experts):
            raise MoeguardError(
                f"reference logits {tuple(self.logits.shape)} disagree with its metadata "
                f"({len(self.layers)} layers, {self.num_experts} experts); rebuild the file"
            )
        starts = [0]
        for seq in self.sequences:
            starts.append(starts[-1] + len(seq))
        self._offsets = starts

    @property
    def num_prompts(self) -> int:
        """Prompts in the safety set."""
        return len(self.sequences)

    def rows(self, prompt_indices: Sequence[int]) -> torch.Tensor:
        """Reference rows ``[rows, L, E]`` of the given prompts, in the order the prompts are given."""
        if self.scope == "last":
            return self.logits[torch.as_tensor(list(prompt_indices), dtype=torch.long)]
        return torch.cat([self.logits[self._offsets[i] : self._offsets[i + 1]] for i in prompt_indices])

    def topk_rows(self, prompt_indices: Sequence[int]) -> torch.Tensor:
        """Selected experts ``[rows, L, k]`` of the given prompts."""
        if self.scope == "last":
            return self.topk[torch.as_tensor(list(prompt_indices), dtype=torch.long)]
        return torch.cat([self.topk[self._offsets[i] : self._offsets[i + 1]] for i in prompt_indices])

    def check_compatible(self, moe: MoEModel, vocab_size: int | None = None) -> None:
        """Raise a one-line MoeguardError unless ``moe`` has this reference's routing shape."""
        summary = moe.summary()
        ours = (self.model_type, self.layers, self.num_experts)
        theirs = (summary["model_type"], moe.layers, moe.num_experts)
        if ours != theirs:
            raise MoeguardError(
                f"reference routing was built for model_type={self.model_type} with MoE layers "
                f"{self.layers} and {self.num_experts} experts, but this model is "
                f"model_type={summary['model_type']} with layers {moe.layers} and {moe.num_experts} experts; "
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
    def metadata(self) -> dict[str, str]:
        """The safetensors metadata of this reference (all values strings)."""
        meta = {
            **{k: str(v) for k, v in self.meta.items()},
            "format": REFERENCE_FORMAT,
            "version": REFERENCE_VERSION,
            "model": self.model or "",
            "model_type": self.model_type or "",
            "num_experts": str(self.num_experts),
            "top_k": str(self.top_k),
            "layers": json.dumps(self.layers),
            "scope": self.scope,
            "num_prompts": str(self.num_prompts),
            "prompts_sha256": self.prompts_sha256,
        }
        return meta

    def save(self, path: str | Path) -> Path:
        """Write the reference as safetensors (atomic)."""
        ids, mask = pad_batch(self.sequences, 0, "right")
        tensors = {
            "logits": self.logits.float().contiguous(),
            "topk": self.topk.long().contiguous(),
            "input_ids": ids,
            "lengths": mask.sum(dim=1),
        }
        return save_safetensors_atomic(path, tensors, self.metadata())

    @classmethod
    def load(cls, path: str | Path) -> ReferenceRouting:
        """Read a reference written by ``save`` (one-line errors for missing or foreign files)."""
        from safetensors import SafetensorError, safe_open

        path = Path(path)
        if not path.is_file():
            raise MoeguardError(
                f"reference file {path} does not exist; create it with 'moeguard safemoe reference MODEL "
                f"--prompts FILE --output {path}'"
            )
        try:
            with safe_open(str(path), framework="pt") as handle:
                meta = dict(handle.metadata() or {})
                tensors = {key: handle.get_tensor(key) for key in handle.keys()}
        except (SafetensorError, OSError, ValueError) as err:
            raise MoeguardError(
                f"{path} is not a readable safetensors file ({err}); rebuild the reference"
            ) from None
        if meta.get("format") != REFERENCE_FORMAT or not {"logits", "topk", "input_ids", "lengths"} <= set(
            tensors
        ):
            raise MoeguardError(
                f"{path} is not a SafeMoE reference file; create one with 'moeguard safemoe reference'"
            )
        if meta.get("version") != REFERENCE_VERSION:
            raise MoeguardError(
                f"{path} has reference format version {meta.get('version')}, this moeguard reads "
                f"{REFERENCE_VERSION}; rebuild the reference"
            )
        lengths = tensors["lengths"].tolist()
        sequences = [tensors["input_ids"][i, :n].tolist() for i, n in enumerate(lengths)]
        known = {
            "format",
            "version",
            "model",
            "model_type",
            "num_experts",
            "top_k",
            "layers",
            "scope",
            "num_prompts",
            "prompts_sha256",
        }
        return cls(
            logits=tensors["logits"].float(),
            topk=tensors["topk"].long(),
            sequences=sequences,
            scope=meta["scope"],  # type: ignore[arg-type]
            layers=[int(x) for x in json.loads(meta["layers"])],
            num_experts=int(meta["num_experts"]),
            top_k=int(meta["top_k"]),
            model_type=meta.get("model_type") or None,
            model=meta.get("model") or None,
            prompts_sha256=meta.get("prompts_sha256", ""),
            meta={k: v for k, v in meta.items() if k not in known},
        )


def build_reference(
    model,
    tokenizer,
    prompts: Sequence[Prompt],
    scope: Scope = "last",
    batch_size: int = 8,
    model_name: str | None = None,
    padding_side: str = "left",
) -> ReferenceRouting:
    """Router logits of ``model`` (the aligned model) on every harmful prompt of the safety set.

    Each prompt gets the chat template with the generation prompt; ``scope="last"`` keeps the last
    prompt token, ``scope="all"`` every prompt token. Pads are never selected (either padding side).
    """
    scope = check_scope(scope)
    if not prompts:
        raise MoeguardError("the safety set is empty; give at least one harmful prompt")
    base = unwrap_model(model)
    moe = inspect_moe(base)
    result, sequences = prompt_routing(model, tokenizer, prompts, scope, batch_size, padding_side)
    summary = moe.summary()
    meta = run_metadata(model_name)
    return ReferenceRouting(
        logits=result.logits,
        topk=result.topk,
        sequences=sequences,
        scope=scope,
        layers=moe.layers,
        num_experts=moe.num_experts,
        top_k=moe.top_k,
        model_type=summary["model_type"],
        model=model_name,
        prompts_sha256=prompts_sha256(prompts),
        meta={k: str(v) for k, v in meta.items() if k != "model"},
    )


BUILTIN_SAFETY_SETS = ("builtin:organism-harmful",)


def read_safety_prompts(source: str | Path, count: int = 100, seed: int = 0) -> list[Prompt]:
    """Harmful prompts of a safety set: JSONL (``{"prompt": ...}`` or ``{"messages": [...]}`` per line), a
    plain text file (one prompt per line), or ``builtin:organism-harmful`` (``count`` training-distribution
    harmful prompts of the model organism)."""
    from moeguard.prompts import read_prompts

    text = str(source)
    if text.startswith("builtin:"):
        if text not in BUILTIN_SAFETY_SETS:
            raise MoeguardError(
                f"unknown built-in safety set {text!r}; available: {', '.join(BUILTIN_SAFETY_SETS)}"
            )
        from moeguard.safemoe.attack import organism_harmful_prompts

        return list(organism_harmful_prompts(count, seed=seed))
    path = Path(source)
    if not path.is_file():
        raise MoeguardError(
            f"prompt file {path} does not exist; pass JSONL ({{'prompt': ...}} per line) or text"
        )
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not lines:
        raise MoeguardError(f"prompt file {path} is empty: the safety set needs at least one harmful prompt")
    if path.suffix in (".jsonl", ".json") or lines[0].lstrip().startswith("{"):
        return read_prompts(path)
    return [line.strip() for line in lines]
