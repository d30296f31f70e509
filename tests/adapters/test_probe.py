"""The load-time routing check: a wrong adapter assignment is refused in one line (library and CLI, exit 2),
an unregistered model type is used only with ``allow_unregistered`` and only when a known family reproduces
its routers exactly, and the verdict is cached per model (re-checked after a dtype change)."""

from __future__ import annotations

import copy
import json

import pytest
import torch

from cli_helpers import error_line, run_cli
from moeguard import MoeguardError, inspect_moe
from moeguard.adapters import probe, registry
from moeguard.adapters.softmax_topk import JambaAdapter, SoftmaxTopKAdapter
from moeguard.models import load_model


@pytest.fixture
def jamba_as_qwen(monkeypatch):
    """Register the Qwen softmax-top-k rule for jamba (a near miss: Jamba never renormalises its top-k)."""
    registry.load_builtin_adapters()
    wrong = copy.copy(SoftmaxTopKAdapter())
    wrong.router_class_names = ("JambaTopKRouter",)
    monkeypatch.setitem(registry._ADAPTERS, "jamba", wrong)
    return wrong


@pytest.fixture
def unregistered(monkeypatch):
    """``unregistered(model_type)`` removes that type from the registry for one test."""
    registry.load_builtin_adapters()

    def remove(model_type: str) -> None:
        monkeypatch.delitem(registry._ADAPTERS, model_type)

    return remove


def test_wrong_adapter_assignment_is_refused_in_one_line(jamba_as_qwen, tiny_model_dir):
    model, _ = load_model(tiny_model_dir("jamba"))
    with pytest.raises(MoeguardError) as err:
        inspect_moe(model)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("routing check failed for JambaForCausalLM (model_type='jamba')")
    assert "softmax-topk rule" in message and "weights differ" in message


def test_right_adapter_passes_after_a_wrong_one_failed(jamba_as_qwen, tiny_model_dir, monkeypatch):
    model, _ = load_model(tiny_model_dir("jamba"))
    with pytest.raises(MoeguardError):
        inspect_moe(model)
    monkeypatch.setitem(registry._ADAPTERS, "jamba", registry.adapter_for_model_type("mixtral"))
    with pytest.raises(MoeguardError, match="has no MixtralTopKRouter/MiniMaxTopKRouter router"):
        inspect_moe(model)
    assert inspect_moe(model, adapter=JambaAdapter()).family == "softmax-topk (jamba)"


def test_cli_refuses_a_wrong_adapter_with_exit_2(jamba_as_qwen, tiny_model_dir, capsys):
    result = run_cli(capsys, "inspect", tiny_model_dir("jamba"))
    assert result.code == 2
    line = error_line(result)
    assert "routing check failed" in line and "jamba" in line


def test_indices_mismatch_is_named(tiny_model_dir):
    """An explicit adapter whose selection differs (Granite's top-k of logits on OLMoE: same experts, other
    weights; GPT-OSS on Mixtral routers would be caught the same way) is named with the layer and router."""
    from moeguard.adapters.topk_softmax import GraniteMoeAdapter

    model, _ = load_model(tiny_model_dir("olmoe"))
    wrong = copy.copy(GraniteMoeAdapter())
    wrong.router_class_names = ("OlmoeTopKRouter",)
    with pytest.raises(MoeguardError, match=r"decoder layer 0's OlmoeTopKRouter: (weights|selected)") as err:
        inspect_moe(model, adapter=wrong)
    assert "\n" not in str(err.value)


def test_unregistered_type_needs_the_flag_and_reports_the_matched_family(unregistered, tiny_model_dir, capsys):
    unregistered("mellum")
    folder = tiny_model_dir("mellum")
    model, _ = load_model(folder)
    with pytest.raises(MoeguardError, match="--allow-unregistered") as err:
        inspect_moe(model)
    assert "\n" not in str(err.value) and "model_type='mellum'" in str(err.value)
    moe = inspect_moe(model, allow_unregistered=True)
    assert moe.matched_family == "softmax-topk"
    assert moe.adapter.router_class_names == ("MellumTopKRouter",)
    assert inspect_moe(model).matched_family == "softmax-topk"  # remembered for this model object
    assert moe.summary()["unregistered_type_matched"] == "softmax-topk"

    refused = run_cli(capsys, "inspect", folder)
    assert refused.code == 2 and "--allow-unregistered" in error_line(refused)
    allowed = run_cli(capsys, "inspect", folder, "--allow-unregistered", "--json")
    assert allowed.code == 0, allowed.err
    assert json.loads(allowed.out)["unregistered_type_matched"] == "softmax-topk"


def test_unregistered_type_no_family_reproduces_is_refused(unregistered, tiny_model_dir):
    unregistered("zaya")
    model, _ = load_model(tiny_model_dir("zaya"))
    with pytest.raises(MoeguardError, match="no known routing family reproduces its routers") as err:
        inspect_moe(model, allow_unregistered=True)
    assert "ZayaRouter" in str(err.value) and "\n" not in str(err.value)


def test_verdict_is_cached_and_rechecked_after_a_dtype_change(tiny_model_dir, monkeypatch):
    model, _ = load_model(tiny_model_dir("qwen3_moe"))
    calls = []
    real = probe._problem
    monkeypatch.setattr(probe, "_problem", lambda moe: calls.append(moe) or real(moe))
    inspect_moe(model)
    inspect_moe(model)
    assert len(calls) == 1
    model.to(torch.bfloat16)
    inspect_moe(model)
    assert len(calls) == 2
