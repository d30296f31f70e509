"""The SafeMoE routing-alignment loss (DESIGN §1.4).

``L_route = mean over rows n of Σ_l KL(softmax(R_ref[n, l] / T) ‖ softmax(R_cur[n, l] / T))``

A row is one harmful prompt (token scope ``last``) or one prompt token (scope ``all``). The reference
side is a constant: gradients flow only through the current logits.
"""

from __future__ import annotations

import torch

from moeguard.errors import MoeguardError

#: Temperature of the published method.
DEFAULT_TEMPERATURE = 0.1


def _check(reference_logits: torch.Tensor, current_logits: torch.Tensor, temperature: float) -> None:
    if reference_logits.dim() != 3 or current_logits.dim() != 3:
        raise MoeguardError(
            f"routing logits must be [rows, layers, experts]; got reference "
            f"{tuple(reference_logits.shape)} and current {tuple(current_logits.shape)}"
        )
    if reference_logits.shape != current_logits.shape:
        raise MoeguardError(
            f"reference routing {tuple(reference_logits.shape)} does not match the current routing "
            f"{tuple(current_logits.shape)}; build the reference from the same model family and prompts"
        )
    if reference_logits.shape[0] == 0:
        raise MoeguardError("the safety set is empty; give at least one harmful prompt")
    if not temperature > 0:
        raise MoeguardError(f"temperature must be > 0, got {temperature}")


def routing_kl_per_layer(
    reference_logits: torch.Tensor, current_logits: torch.Tensor, temperature: float = DEFAULT_TEMPERATURE
) -> torch.Tensor:
    """Per-layer alignment loss ``[layers]``: mean over rows of KL(softmax(ref/T) ‖ softmax(cur/T)).

    Both inputs are ``[rows, layers, experts]``; computed in float32; no gradient reaches the reference.
    """
    _check(reference_logits, current_logits, temperature)
    device = current_logits.device
    ref_logp = torch.log_softmax(reference_logits.detach().to(device=device, dtype=torch.float32) / temperature, -1)
    cur_logp = torch.log_softmax(current_logits.float() / temperature, dim=-1)
    kl = (ref_logp.exp() * (ref_logp - cur_logp)).sum(dim=-1)  # [rows, layers]
    return kl.mean(dim=0)


def routing_kl(
    reference_logits: torch.Tensor, current_logits: torch.Tensor, temperature: float = DEFAULT_TEMPERATURE
) -> torch.Tensor:
    """SafeMoE's ``L_route``: mean over rows of the sum over layers of KL(softmax(ref/T) ‖ softmax(cur/T)).

    Args:
        reference_logits: aligned model's router logits ``[rows, layers, experts]`` (treated as constant).
        current_logits: the model being tuned, same shape; the loss is differentiable in these.
        temperature: softmax temperature ``T`` (0.1 in the paper; small T sharpens both distributions).

    Returns a scalar float32 tensor; 0 when the two are identical.
    """
    return routing_kl_per_layer(reference_logits, current_logits, temperature).sum()
