"""The organism's training recipe on a tiny scale: determinism, expert-specialised safety tuning, routing noise."""

from __future__ import annotations

import pytest
import torch

from moeguard.organism import corpus
from moeguard.organism.train import OrganismConfig, _esft_optimizer, _ExpertDropout, train_organism


def tiny_config(**overrides) -> OrganismConfig:
    base = dict(
        steps=6, helpful_steps=3, warmup_steps=2, batch_size=4, num_layers=2, hidden_size=32, num_heads=2,
        num_experts=4, top_k=2, expert_size=16, vocab_size=300, n_chat=160, n_pretrain=40, max_length=96,
        align_experts=1, threads=1,
    )
    return OrganismConfig(**{**base, **overrides})


def _router_indices(model, input_ids) -> dict[int, torch.Tensor]:
    from moeguard.adapters import inspect_moe

    seen: dict[int, torch.Tensor] = {}
    moe = inspect_moe(model)
    handles = [
        router.register_forward_hook(lambda m, a, out, layer=layer: seen.__setitem__(layer, out[2]))
        for layer, router in moe.routers.items()
    ]
    with torch.no_grad():
        model(input_ids=input_ids)
    for handle in handles:
        handle.remove()
    return seen


def test_recipe_is_deterministic_under_its_seed(tmp_path, one_torch_thread):
    from safetensors.torch import load_file

    first = train_organism(tiny_config(), tmp_path / "a")
    second = train_organism(tiny_config(), tmp_path / "b")
    third = train_organism(tiny_config(seed=1), tmp_path / "c")
    a, b, c = (load_file(p / "model.safetensors") for p in (tmp_path / "a", tmp_path / "b", tmp_path / "c"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)
    assert first.losses == second.losses
    assert len(first.aligned_experts) == 2 and {layer for layer, _ in first.aligned_experts} == {0, 1}
    assert third.output.is_dir()


def test_safety_stage_updates_only_routers_attention_and_aligned_experts(load_tiny):
    model, _ = load_tiny("olmoe")
    model.train()
    config = OrganismConfig(num_experts=model.config.num_experts, align_attention=True)
    optimizer = _esft_optimizer(model, [(0, 1)], config)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    ids = torch.randint(0, model.config.vocab_size, (2, 8))
    model(input_ids=ids, labels=ids).loss.backward()
    optimizer.step()
    after = dict(model.named_parameters())
    experts = "model.layers.0.mlp.experts.gate_up_proj"
    assert not torch.equal(before[experts][1], after[experts][1])  # the aligned expert learns
    assert torch.equal(before[experts][0], after[experts][0])  # the others stay bit-identical
    assert torch.equal(before["model.layers.1.mlp.experts.down_proj"], after["model.layers.1.mlp.experts.down_proj"])
    assert torch.equal(before["model.embed_tokens.weight"], after["model.embed_tokens.weight"])
    assert not torch.equal(before["model.layers.0.mlp.gate.weight"], after["model.layers.0.mlp.gate.weight"])
    query = "model.layers.0.self_attn.q_proj.weight"
    assert not torch.equal(before[query], after[query])


def test_routing_noise_forces_and_switches_off_experts(load_tiny):
    model, _ = load_tiny("olmoe")
    ids = torch.randint(0, model.config.vocab_size, (2, 9))
    plain = _router_indices(model, ids)
    noise = _ExpertDropout(model, p=0.0, seed=0, force=1.0)
    try:
        noise.resample()
        forced = {layer: noise.masks[layer][1] for layer in noise.masks}
        for layer, indices in _router_indices(model, ids).items():
            assert (indices == forced[layer]).any(dim=-1).all(), layer  # in every token's top-k
        off = [(layer, forced[layer]) for layer in forced]
        noise.switch_off(off)
        for layer, indices in _router_indices(model, ids).items():
            assert not (indices == forced[layer]).any(), layer
    finally:
        noise.remove()
    after = _router_indices(model, ids)
    assert all(torch.equal(plain[layer], after[layer]) for layer in plain)  # hooks gone


@pytest.mark.parametrize("seed", range(5))
def test_nonce_frames_keep_the_task_slot(seed):
    import random

    rng = random.Random(seed)
    for frame in corpus.TRAIN_FRAMES:
        changed = corpus._nonce_frame(rng, frame)
        assert changed.count("{task}") == 1 and changed != frame
        assert changed.split("{task}")[1] == frame.split("{task}")[1]
