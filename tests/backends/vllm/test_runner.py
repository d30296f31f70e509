"""Engine-level decisions of the runner hooks that need no engine: options, graph safety, the served shape."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from moeguard.backends.vllm.router import RouterParams
from moeguard.backends.vllm.runner import backend_config, served_shape, static_graph
from moeguard.errors import MoeguardError


def test_backend_config_switch_and_options():
    assert backend_config(SimpleNamespace(additional_config={})) is None
    assert backend_config(SimpleNamespace(additional_config={"moeguard": {"max_specs": 4}})) == {"max_specs": 4}
    with pytest.raises(MoeguardError, match="must be an object"):
        backend_config(SimpleNamespace(additional_config={"moeguard": "on"}))
    with pytest.raises(MoeguardError, match="unknown option"):
        backend_config(SimpleNamespace(additional_config={"moeguard": {"max_spec": 4}}))


def test_graph_safe_steering_follows_the_engine_and_python_branches_are_refused_under_graphs():
    assert static_graph("auto", None) is False
    assert static_graph("auto", "compiled") is True and static_graph("auto", "CUDA-graph") is True
    assert static_graph("graph", None) is True
    assert static_graph("python", None) is False
    with pytest.raises(MoeguardError, match="cannot run in a CUDA-graph engine"):
        static_graph("python", "CUDA-graph")
    with pytest.raises(MoeguardError, match="use one of auto, graph, python"):
        static_graph("fast", None)


def test_served_shape_uses_the_hf_adapter_of_the_model_type():
    params = dict(
        top_k=2,
        num_experts=8,
        norm_topk_prob=True,
        num_group=4,
        topk_group=2,
        routed_scaling_factor=1.0,
        router_jitter_noise=0.0,
        training=False,
    )
    config = SimpleNamespace(model_type="deepseek_v3", num_hidden_layers=3, n_shared_experts=1)
    shape = served_shape({1: RouterParams(**params), 2: RouterParams(**params)}, config)
    assert shape.family.startswith("sigmoid-group") and shape.layers == [1, 2] and shape.shared_experts == 1
    with pytest.raises(MoeguardError, match="no moeguard routing adapter"):
        served_shape({0: RouterParams(**params)}, SimpleNamespace(model_type="llama", num_hidden_layers=1))
    # a family moeguard serves on transformers whose adapter reads attributes vLLM's router has not (DBRX's
    # block holds top_k; inspect_moe records the block only for transformers routers)
    with pytest.raises(MoeguardError, match="cannot be steered on vLLM.*use --backend hf"):
        served_shape({0: RouterParams(**params)}, SimpleNamespace(model_type="dbrx", num_hidden_layers=1))
