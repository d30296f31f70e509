"""Router logits at chosen prompt tokens, with gradients when wanted.

``RouterTap`` puts one forward hook on every MoE router (``moe.routers[layer]``, whose output is
``(router_logits [B*T, E], weights, indices)``) and keeps only the rows of the tokens asked for, so the
training forward pass stays cheap and differentiable. ``prompt_routing`` runs prompts through a model
and returns the routing at the last prompt token (``scope="last"``) or at every prompt token
(``scope="all"``); pads are never selected, whichever side the tokenizer pads on.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from moeguard.adapters import MoEModel, inspect_moe
from moeguard.errors import MoeguardError
from moeguard.generation import has_chat_template
from moeguard.prompts import Prompt

Scope = Literal["last", "all"]
SCOPES = ("last", "all")


def check_scope(scope: str) -> Scope:
    """Validate a token scope name."""
    if scope not in SCOPES:
        raise MoeguardError(f"unknown token scope {scope!r}; use 'last' (paper) or 'all'")
    return scope  # type: ignore[return-value]


def unwrap_model(model: nn.Module) -> nn.Module:
    """The transformers model under PEFT / DDP / accelerate wrappers (LoRA layers stay injected)."""
    seen = 0
    while seen < 8:
        seen += 1
        if hasattr(model, "get_base_model") and callable(model.get_base_model):
            model = model.get_base_model()
        elif isinstance(getattr(model, "module", None), nn.Module):
            model = model.module
        else:
            break
    return model


def token_positions(attention_mask: torch.Tensor, scope: Scope) -> torch.Tensor:
    """Flat indices into ``B*T`` of the selected tokens of every row (row-major order).

    ``last``: the last non-pad token of each row (left or right padding, or none); ``all``: every
    non-pad token, row by row, in position order. A row without any token is an error.
    """
    mask = attention_mask.bool()
    batch, length = mask.shape
    if not bool(mask.any(dim=1).all()):
        raise MoeguardError("a prompt encoded to zero tokens; remove empty prompts from the safety set")
    if scope == "last":
        positions = torch.arange(length, device=mask.device).expand(batch, length)
        last = torch.where(mask, positions, torch.full_like(positions, -1)).amax(dim=1)
        return torch.arange(batch, device=mask.device) * length + last
    return mask.reshape(-1).nonzero().squeeze(1)


def position_ids_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions counted over real tokens only, so left padding does not shift them."""
    return (attention_mask.long().cumsum(dim=-1) - 1).clamp(min=0)


@dataclass
class TapResult:
    """Routing of the selected tokens: ``logits [rows, layers, E]`` and ``topk [rows, layers, k]``."""

    logits: torch.Tensor
    topk: torch.Tensor


class RouterTap:
    """Forward hooks on every router of ``moe`` that keep the selected tokens' routing.

    >>> tap = RouterTap(inspect_moe(model))
    >>> with tap.capture(positions):          # flat indices into B*T of this forward call
    ...     model(input_ids=ids, attention_mask=mask)
    >>> tap.result.logits                     # [len(positions), moe_layers, E], differentiable

    Hooks exist only inside ``capture``; a forward pass recomputed later (gradient checkpointing) is
    not recorded again.
    """

    def __init__(self, moe: MoEModel, detach: bool = False):
        self.moe = moe
        self.layers = moe.layers
        self.detach = detach
        self._positions: torch.Tensor | None = None
        self._kept: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        self.result: TapResult | None = None

    def _hook(self, position: int):
        def hook(module, args, output) -> None:
            if self._positions is None or position in self._kept:
                return
            logits, _, indices = output
            logits = logits.reshape(-1, logits.shape[-1])
            indices = indices.reshape(-1, indices.shape[-1])
            rows = self._positions.to(logits.device)
            kept = logits.index_select(0, rows)
            self._kept[position] = (
                kept.detach() if self.detach else kept,
                indices.index_select(0, rows).detach(),
            )

        return hook

    @contextmanager
    def capture(self, positions: torch.Tensor) -> Iterator[RouterTap]:
        """Record the routing of the tokens at ``positions`` (flat ``B*T`` indices) during the block."""
        self._positions = positions
        self._kept = {}
        self.result = None
        handles = [
            self.moe.routers[layer].register_forward_hook(self._hook(i))
            for i, layer in enumerate(self.layers)
        ]
        try:
            yield self
        finally:
            for handle in handles:
                handle.remove()
            self._positions = None
        if len(self._kept) != len(self.layers):
            missing = [self.layers[i] for i in range(len(self.layers)) if i not in self._kept]
            raise MoeguardError(
                f"routers of layers {missing} did not run in the forward pass; is this the tapped model?"
            )
        first = self._kept[0][0].device
        self.result = TapResult(
            logits=torch.stack([self._kept[i][0].to(first) for i in range(len(self.layers))], dim=1),
            topk=torch.stack([self._kept[i][1].to(first) for i in range(len(self.layers))], dim=1),
        )
        self._kept = {}


def encode_prompts(tokenizer, prompts: Sequence[Prompt]) -> list[list[int]]:
    """Token ids of each prompt with the chat template and the generation prompt (no padding)."""
    from moeguard.capture_run import prompt_text

    texts = [prompt_text(tokenizer, p) for p in prompts]
    encoded = tokenizer(texts, add_special_tokens=not has_chat_template(tokenizer))["input_ids"]
    for i, ids in enumerate(encoded):
        if not ids:
            raise MoeguardError(
                f"prompt {i} encoded to zero tokens; remove empty prompts from the safety set"
            )
    return [list(map(int, ids)) for ids in encoded]


def pad_batch(
    sequences: Sequence[Sequence[int]], pad_id: int, side: str = "right"
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(input_ids, attention_mask)`` of token-id lists padded on ``side`` ("left" or "right")."""
    length = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), length), int(pad_id), dtype=torch.long)
    mask = torch.zeros((len(sequences), length), dtype=torch.long)
    for row, seq in enumerate(sequences):
        n = len(seq)
        cols = slice(length - n, length) if side == "left" else slice(0, n)
        ids[row, cols] = torch.tensor(list(seq), dtype=torch.long)
        mask[row, cols] = 1
    return ids, mask


def input_device(model: nn.Module) -> torch.device:
    """Device of the input embeddings (first device of a dispatched model)."""
    base = unwrap_model(model)
    embeddings = base.get_input_embeddings() if hasattr(base, "get_input_embeddings") else None
    if embeddings is not None:
        return embeddings.weight.device
    return next(base.parameters()).device


def lean_forward_kwargs(model: nn.Module) -> dict:
    """``logits_to_keep=1`` when the model accepts it: routing needs no vocabulary logits."""
    forward = getattr(unwrap_model(model), "forward", None)
    try:
        accepts = forward is not None and "logits_to_keep" in inspect.signature(forward).parameters
    except (TypeError, ValueError):
        accepts = False
    return {"logits_to_keep": 1} if accepts else {}


def pad_id_of(tokenizer) -> int:
    """The tokenizer's pad id (eos when it has no pad token)."""
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    return int(pad) if pad is not None else 0


@torch.no_grad()
def token_routing(
    model: nn.Module,
    sequences: Sequence[Sequence[int]],
    pad_id: int,
    scope: Scope = "last",
    batch_size: int = 8,
    padding_side: str = "left",
    moe: MoEModel | None = None,
) -> TapResult:
    """Routing (detached, float32 logits on CPU) at the selected tokens of pre-tokenised prompts.

    Rows are ordered prompt by prompt (and, for ``scope="all"``, token by token within a prompt).
    Position ids come from the attention mask, so left and right padding give the same routing.
    """
    scope = check_scope(scope)
    if not sequences:
        raise MoeguardError("the safety set is empty; give at least one harmful prompt")
    moe = moe or inspect_moe(unwrap_model(model))
    tap = RouterTap(moe, detach=True)
    device = input_device(model)
    was_training = model.training
    model.eval()
    logits, topk = [], []
    try:
        for start in range(0, len(sequences), batch_size):
            ids, mask = pad_batch(sequences[start : start + batch_size], pad_id, padding_side)
            with tap.capture(token_positions(mask, scope)):
                model(
                    input_ids=ids.to(device),
                    attention_mask=mask.to(device),
                    position_ids=position_ids_from_mask(mask).to(device),
                    use_cache=False,
                    **lean_forward_kwargs(model),
                )
            logits.append(tap.result.logits.float().cpu())
            topk.append(tap.result.topk.cpu())
    finally:
        model.train(was_training)
    return TapResult(logits=torch.cat(logits), topk=torch.cat(topk))


def prompt_routing(
    model: nn.Module,
    tokenizer,
    prompts: Sequence[Prompt],
    scope: Scope = "last",
    batch_size: int = 8,
    padding_side: str = "left",
) -> tuple[TapResult, list[list[int]]]:
    """Routing of every prompt (chat template + generation prompt) and the token ids that were run."""
    sequences = encode_prompts(tokenizer, prompts) if prompts else []
    result = token_routing(model, sequences, pad_id_of(tokenizer), scope, batch_size, padding_side)
    return result, sequences
