"""Request-side helpers (no vLLM import): what to put into ``SamplingParams(extra_args=...)`` (or the OpenAI
server's ``vllm_xargs``) to steer or capture one request.

Keys are flat and values are strings because ``vllm_xargs`` only carries ``str | int | float`` (and lists of
them): the spec travels as JSON text or as the name of a spec preloaded into the engine.
"""

from __future__ import annotations

import json

from moeguard.backends.vllm.state import CAPTURE_KEY, NO_STEER, STEER_KEY
from moeguard.steer import SteeringSpec

__all__ = ["CAPTURE_KEY", "NO_STEER", "STEER_KEY", "capture_args", "steer_args"]


def steer_args(spec: SteeringSpec | dict | str | None) -> dict:
    """``extra_args`` entries that make one request route with ``spec``: a spec, its dict, or the name of a
    preloaded spec (``"none"``: no steering, even on a server with a default spec). ``None``: nothing."""
    if spec is None:
        return {}
    if isinstance(spec, str):
        return {STEER_KEY: spec}
    if isinstance(spec, dict):
        spec = SteeringSpec.from_dict(spec)
    if not len(spec):
        return {STEER_KEY: NO_STEER}
    return {STEER_KEY: json.dumps(spec.to_dict(), sort_keys=True)}


def capture_args(tag: str) -> dict:
    """``extra_args`` entries that record one request's routing under ``tag``."""
    return {CAPTURE_KEY: str(tag)}
