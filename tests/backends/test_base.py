"""The backend interface: per-prompt specs, spec validation against the model's shape, backend names."""

from __future__ import annotations

import pytest

from moeguard.backends import get_backend, per_prompt
from moeguard.backends.base import spec_key
from moeguard.errors import MoeguardError
from moeguard.steer import SteeringSpec
from vllm_helpers import HAS_VLLM

SPEC = SteeringSpec(activate=[(0, 1)])


def test_per_prompt_spreads_one_spec_and_checks_lists():
    assert per_prompt(None, 2) == [None, None]
    assert per_prompt(SPEC, 2) == [SPEC, SPEC]
    assert per_prompt([SPEC, None, SteeringSpec()], 3) == [SPEC, None, None]  # empty specs steer nothing
    with pytest.raises(MoeguardError, match="2 steering specs for 3 prompts"):
        per_prompt([SPEC, None], 3)


def test_spec_key_is_canonical():
    assert spec_key(None) == ""
    assert spec_key(SteeringSpec(activate=[(0, 1)], deactivate=[(1, 2)])) == spec_key(
        SteeringSpec.from_dict({"deactivate": [[1, 2]], "activate": [[0, 1]]})
    )


def test_unknown_backend_is_one_line():
    with pytest.raises(MoeguardError, match="unknown backend 'tgi'; use one of hf, vllm"):
        get_backend("tgi")


@pytest.mark.skipif(HAS_VLLM, reason="vLLM is installed here")
def test_vllm_without_vllm_names_the_extra():
    with pytest.raises(MoeguardError, match=r'needs vLLM, which is not installed; pip install "moeguard\[vllm\]"'):
        get_backend("vllm")
