"""MoEShape: one spec validation for every engine (a loaded HF model is a shape; so is a served one)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from moeguard.adapters import MoEModel
from moeguard.adapters.sigmoid_group import DeepseekV3Adapter
from moeguard.errors import MoeguardError
from moeguard.routing import MoEShape
from moeguard.steer import SteeringSpec


def deepseek_shape() -> MoEShape:
    router = SimpleNamespace(top_k=2, num_experts=8, num_group=4, topk_group=2)
    return MoEShape(
        adapter=DeepseekV3Adapter(),
        routers={1: router, 2: router},
        num_experts=8,
        top_k=2,
        num_decoder_layers=3,
        model_type="deepseek_v3",
    )


def test_a_shape_validates_specs_like_a_loaded_model(load_tiny):
    shape = deepseek_shape()
    model, _ = load_tiny("deepseek_v3")
    from moeguard import inspect_moe

    moe = inspect_moe(model)
    assert isinstance(moe, MoEModel) and isinstance(moe, MoEShape)
    assert moe.summary() == {"model_class": type(model).__name__, **shape.summary(), "shared_experts": 1}
    for spec, message in [
        (SteeringSpec(activate=[(0, 1)]), "decoder layer 0 has no router"),
        (SteeringSpec(activate=[(5, 1)]), "out of range"),
        (SteeringSpec(activate=[(1, 9)]), "expert 9 in layer 1 is out of range"),
        (SteeringSpec(activate=[(1, 0), (1, 2), (1, 4)]), "activates 3 experts but only top_k=2"),
        (SteeringSpec(activate=[(1, 0), (1, 2)], mode="soft"), None),
        (SteeringSpec(activate=[(2, 0), (2, 7)]), None),
    ]:
        for target in (shape, moe):
            if message is None:
                spec.validate(target)
            else:
                with pytest.raises(MoeguardError, match=message):
                    spec.validate(target)
    assert SteeringSpec(deactivate=[(2, 3)]).edits(shape)[2].deactivate.tolist() == [False] * 3 + [True] + [False] * 4


def test_random_control_needs_only_a_shape():
    spec = SteeringSpec(activate=[(1, 0)], deactivate=[(2, 3), (2, 4)])
    control = spec.random_like(deepseek_shape(), seed=0)
    assert len(control.activate) == 1 and len(control.deactivate) == 2
    assert control == spec.random_like(deepseek_shape(), seed=0)
