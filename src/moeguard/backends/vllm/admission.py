"""Spec checks at the API edge of ``moeguard serve``: a request whose spec does not fit the model is refused
with HTTP 400 (one line) before it reaches the engine, instead of stopping the worker.

vLLM calls ``validate_params`` of every custom logits processor on each request at admission, in the server
process; ``moeguard serve`` registers :class:`SpecAdmission` (``--logits-processors``) and hands it the
served model's shape and preloaded spec names through the environment. The processor changes no logits.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache

import torch
from vllm.v1.sample.logits_processor import LogitsProcessor

from moeguard.backends.vllm.server import SHAPE_ENV, SPECS_ENV
from moeguard.backends.vllm.state import request_spec
from moeguard.errors import MoeguardError
from moeguard.steer import SteeringSpec


@lru_cache(maxsize=1)
def _served():
    from moeguard.backends.vllm.engine import client_shape

    shape = client_shape(json.loads(os.environ[SHAPE_ENV])) if os.environ.get(SHAPE_ENV) else None
    named = {name: SteeringSpec.load(path) for name, path in json.loads(os.environ.get(SPECS_ENV) or "{}").items()}
    return shape, named


def check_request(extra_args: dict | None) -> None:
    """ValueError (HTTP 400) naming the problem if the request's spec cannot steer the served model."""
    shape, named = _served()
    try:
        found = request_spec(extra_args, named)
        if found is not None and shape is not None:
            found[1].validate(shape)
    except MoeguardError as err:
        raise ValueError(f"moeguard: {err}") from None


class SpecAdmission(LogitsProcessor):
    """Validates ``vllm_xargs`` steering specs at admission; a no-op on logits."""

    @classmethod
    def validate_params(cls, sampling_params):
        check_request(sampling_params.extra_args)

    def __init__(self, vllm_config, device: torch.device, is_pin_memory: bool):
        pass

    def apply(self, logits: torch.Tensor) -> torch.Tensor:
        return logits

    def is_argmax_invariant(self) -> bool:
        return True

    def update_state(self, batch_update) -> None:
        pass
