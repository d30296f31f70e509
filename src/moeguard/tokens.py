"""Batches of token ids: padding, attention masks, position ids and token selections."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch

from moeguard.errors import MoeguardError

Scope = Literal["last", "all"]
SCOPES = ("last", "all")


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


def pad_id_of(tokenizer) -> int:
    """The tokenizer's pad id (eos when it has no pad token, 0 when it has neither)."""
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    if isinstance(pad, list):
        pad = pad[0] if pad else None
    return int(pad) if pad is not None else 0


def check_scope(scope: str) -> Scope:
    """Validate a token scope name."""
    if scope not in SCOPES:
        raise MoeguardError(f"unknown token scope {scope!r}; use 'last' (paper) or 'all'")
    return scope  # type: ignore[return-value]


def scope_mask(attention_mask: torch.Tensor, scope: Scope) -> torch.Tensor:
    """``[B, T]`` bool: the last real token of each row (``last``: left, right or no padding) or every real
    token (``all``). A row without any token is an error."""
    mask = attention_mask.bool()
    if not bool(mask.any(dim=1).all()):
        raise MoeguardError("a prompt encoded to zero tokens; remove empty prompts")
    if scope == "all":
        return mask
    batch, length = mask.shape
    positions = torch.arange(length, device=mask.device).expand(batch, length)
    last = torch.where(mask, positions, torch.full_like(positions, -1)).amax(dim=1)
    return positions == last.unsqueeze(1)


def token_positions(attention_mask: torch.Tensor, scope: Scope) -> torch.Tensor:
    """Flat indices into ``B*T`` of the selected tokens (see :func:`scope_mask`), row by row."""
    return scope_mask(attention_mask, scope).reshape(-1).nonzero().squeeze(1)


def position_ids_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions counted over real tokens only, so left padding does not shift them."""
    return (attention_mask.long().cumsum(dim=-1) - 1).clamp(min=0)
