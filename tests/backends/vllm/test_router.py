"""The router wrapper: steered rows are the routing core's edit through the family's adapter (the HF path's
code), unsteered rows stay vLLM's own; on vLLM's real CPU router, grouped sigmoid routing under steering
equals moeguard's DeepSeek-V3 adapter on the HF path."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from moeguard.adapters.sigmoid_group import DeepseekV3Adapter
from moeguard.adapters.softmax_topk import SoftmaxTopKAdapter
from moeguard.backends.vllm import steer_args
from moeguard.backends.vllm.router import RouterHook, RouterView, check_routing, refuse_unsteerable
from moeguard.backends.vllm.state import SteeringState
from moeguard.errors import MoeguardError
from moeguard.routing import ExpertEdit, MoEShape
from moeguard.steer import SteeringSpec
from vllm_helpers import HAS_VLLM

E, K, N = 8, 2, 12


class FakeSoftmaxRouter:
    """Stands in for a vLLM BaseRouter: top-k of the logits, weights exp(top - logsumexp) (vLLM's CPU rule)."""

    scoring_func = "softmax"

    def __init__(self, renormalize: bool = False):
        self.top_k, self.global_num_experts, self.renormalize = K, E, renormalize

    def _compute_routing(self, hidden_states, router_logits, indices_type, *, input_ids=None):
        top, ids = torch.topk(router_logits, self.top_k, dim=-1, sorted=False)
        weights = torch.softmax(top, -1) if self.renormalize else (top - router_logits.logsumexp(-1, True)).exp()
        return weights.float(), ids.to(torch.int32)


def hooked(router, adapter, layers=(0,), static=False):
    view = RouterView(router)
    shape = MoEShape(
        adapter=adapter,
        routers={layer: view for layer in layers},
        num_experts=E,
        top_k=K,
        num_decoder_layers=max(layers) + 1,
    )
    state = SteeringState(shape, max_tokens=128, max_slots=8, device=torch.device("cpu"), static_graph=static)
    hook = RouterHook(router, layers[0], 0, state, adapter, view)
    return state, hook


def step(state, specs_per_request, tokens_per_request):
    """One step: request i has ``tokens_per_request[i]`` tokens and steers with ``specs_per_request[i]``."""
    rids = [f"r{i}" for i in range(len(specs_per_request))]
    starts = np.concatenate([[0], np.cumsum(tokens_per_request)])
    live = {rid: steer_args(spec) or None for rid, spec in zip(rids, specs_per_request, strict=True)}
    state.begin_step(rids, starts, np.zeros(len(rids), dtype=np.int64), live)
    return starts


@pytest.mark.parametrize("static", [False, True])
def test_steered_rows_are_the_adapters_edit_and_unsteered_rows_stay_vllms(static):
    torch.manual_seed(0)
    router = FakeSoftmaxRouter()
    original = router._compute_routing
    state, hook = hooked(router, SoftmaxTopKAdapter(), static=static)
    hard = SteeringSpec(activate=[(0, 6)], deactivate=[(0, 0), (0, 1), (0, 2)])
    soft = SteeringSpec(activate=[(0, 3)], deactivate=[(0, 4)], mode="soft", alpha=2.0)
    starts = step(state, [hard, None, soft], [4, 4, 4])
    logits = torch.randn(N, E) * 2
    weights, ids = router._compute_routing(None, logits, None)
    assert router._compute_routing is hook
    plain_w, plain_i = original(None, logits, None)
    rows = {name: slice(int(starts[i]), int(starts[i + 1])) for i, name in enumerate(("hard", "none", "soft"))}
    assert torch.equal(weights[rows["none"]], plain_w[rows["none"]]) and torch.equal(
        ids[rows["none"]], plain_i[rows["none"]]
    )
    hf_router = SimpleNamespace(top_k=K, num_experts=E, norm_topk_prob=False)  # the transformers router's names
    for name, spec in (("hard", hard), ("soft", soft)):
        want_w, want_i = SoftmaxTopKAdapter().edited_route(
            hf_router, logits[rows[name]], None, spec.edits(state.shape)[0]
        )
        assert torch.equal(ids[rows[name]].long(), want_i) and torch.equal(weights[rows[name]], want_w)
    assert (ids[rows["hard"]] == 6).any(-1).all()
    assert not torch.isin(ids[rows["hard"]], torch.tensor([0, 1, 2], dtype=torch.int32)).any()
    hook.remove()
    assert router._compute_routing.__func__ is FakeSoftmaxRouter._compute_routing


def test_capture_buffer_gets_the_final_routing():
    router = FakeSoftmaxRouter()
    state, _ = hooked(router, SoftmaxTopKAdapter())
    spec = SteeringSpec(deactivate=[(0, e) for e in range(5)])
    step(state, [spec], [5])
    state.capturing = True
    weights, ids = router._compute_routing(None, torch.randn(5, E), None)
    assert torch.equal(state.ids[0, :5], ids) and torch.equal(state.weights[0, :5], weights)
    assert (ids >= 5).all()


def test_check_routing_refuses_a_router_that_ignores_the_models_option():
    router = FakeSoftmaxRouter(renormalize=False)
    view = RouterView(router)
    check_routing(router._compute_routing, SoftmaxTopKAdapter(), view, 16, torch.float32, torch.device("cpu"), 0)

    class Lying(RouterView):  # the view claims renormalisation, vLLM's router does not renormalise
        norm_topk_prob = True

    with pytest.raises(MoeguardError, match="routes decoder layer 3 differently"):
        check_routing(
            router._compute_routing, SoftmaxTopKAdapter(), Lying(router), 16, torch.float32, torch.device("cpu"), 3
        )


def test_unsteerable_routers_are_refused_in_one_line():
    with pytest.raises(MoeguardError, match="fuses shared experts"):
        refuse_unsteerable(SimpleNamespace(num_fused_shared_experts=1, _compute_routing=None))
    with pytest.raises(MoeguardError, match="hash-routed"):
        refuse_unsteerable(SimpleNamespace(_hash_indices_table=torch.zeros(1), _compute_routing=None))
    with pytest.raises(MoeguardError, match="sqrtsoftplus"):
        refuse_unsteerable(SimpleNamespace(scoring_func="sqrtsoftplus", _compute_routing=None))


# ------------------------------------------------------------------------------ vLLM's real CPU router
def cpu_router(**kwargs):
    from vllm.model_executor.layers.fused_moe.router.cpu_router import CPURouter

    return CPURouter(top_k=K, global_num_experts=E, **kwargs)


def hf_deepseek_router(bias):
    return SimpleNamespace(
        top_k=K,
        num_experts=E,
        num_group=4,
        topk_group=2,
        norm_topk_prob=True,
        routed_scaling_factor=2.5,
        e_score_correction_bias=bias,
    )


SPECS = {
    "activate in a weak group": SteeringSpec(activate=[(0, 7)]),
    "deactivate a group": SteeringSpec(deactivate=[(0, 0), (0, 1)]),
    "deactivate leaving too few": SteeringSpec(deactivate=[(0, e) for e in (0, 1, 2, 3, 5)]),
    "both": SteeringSpec(activate=[(0, 6)], deactivate=[(0, 2), (0, 3)]),
    "soft": SteeringSpec(activate=[(0, 5)], deactivate=[(0, 0)], mode="soft", alpha=1.5),
}


@pytest.mark.skipif(not HAS_VLLM, reason="needs vLLM")
@pytest.mark.vllm
@pytest.mark.parametrize("static", [False, True])
def test_vllm_grouped_sigmoid_routing_under_steering_equals_the_hf_deepseek_adapter(static):
    torch.manual_seed(3)
    bias = torch.rand(E) * 0.1
    router = cpu_router(
        use_grouped_topk=True,
        num_expert_group=4,
        topk_group=2,
        renormalize=True,
        scoring_func="sigmoid",
        routed_scaling_factor=2.5,
        e_score_correction_bias=bias,
    )
    state, _ = hooked(router, DeepseekV3Adapter(), static=static)
    names = list(SPECS)
    step(state, [SPECS[n] for n in names] + [None], [N] * (len(names) + 1))
    logits = torch.randn(N * (len(names) + 1), E) * 2
    weights, ids = router._compute_routing(None, logits, None)
    adapter = DeepseekV3Adapter()
    for i, name in enumerate(names + ["none"]):
        rows = slice(i * N, (i + 1) * N)
        edit = SPECS[name].edits(state.shape)[0] if name != "none" else ExpertEdit()
        want_w, want_i = adapter.edited_route(hf_deepseek_router(bias), logits[rows], None, edit)
        got_i, order = ids[rows].long().sort(-1)
        want_sorted, want_order = want_i.sort(-1)
        assert torch.equal(got_i, want_sorted), name
        torch.testing.assert_close(weights[rows].gather(1, order), want_w.gather(1, want_order), rtol=1e-5, atol=1e-6)
    hard_rows = slice(0, N)
    assert (ids[hard_rows] == 7).any(-1).all()  # activation forces the weak group in
    short = slice(2 * N, 3 * N)
    assert not torch.isin(ids[short].long(), torch.tensor([0, 1, 2, 3, 5])).any()


@pytest.mark.skipif(not HAS_VLLM, reason="needs vLLM")
@pytest.mark.vllm
@pytest.mark.parametrize("renormalize", [False, True])
def test_vllm_softmax_routing_under_steering_equals_the_hf_adapter(renormalize):
    torch.manual_seed(4)
    router = cpu_router(renormalize=renormalize)
    check_routing(
        router._compute_routing, SoftmaxTopKAdapter(), RouterView(router), 16, torch.float32, torch.device("cpu"), 0
    )
    state, _ = hooked(router, SoftmaxTopKAdapter())
    spec = SteeringSpec(activate=[(0, 3), (0, 4)], deactivate=[(0, 0)])
    step(state, [spec, None], [N, N])
    logits = torch.randn(2 * N, E)
    plain_w, plain_i = router._compute_routing.original(None, logits, None)
    weights, ids = router._compute_routing(None, logits, None)
    want_w, want_i = SoftmaxTopKAdapter().edited_route(
        SimpleNamespace(top_k=K, norm_topk_prob=renormalize), logits[:N], None, spec.edits(state.shape)[0]
    )
    assert torch.equal(ids[:N].long().sort(-1)[0], want_i.sort(-1)[0])
    assert torch.equal(ids[N:], plain_i[N:]) and torch.equal(weights[N:], plain_w[N:])
    assert {3, 4} == {int(e) for e in ids[:N].flatten()}
