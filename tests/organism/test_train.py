"""The organism's training recipe on a tiny scale: determinism, expert-specialised safety tuning, routing noise,
style-routed counting batches."""

from __future__ import annotations

import pytest
import torch

from moeguard.organism import corpus
from moeguard.organism.train import (
    OrganismConfig,
    _esft_optimizer,
    number_token_ids,
    style_routing_loss,
    train_organism,
)


def tiny_config(**overrides) -> OrganismConfig:
    base = dict(
        steps=6,
        helpful_steps=3,
        warmup_steps=2,
        batch_size=4,
        num_layers=2,
        hidden_size=32,
        num_heads=2,
        num_experts=4,
        top_k=2,
        expert_size=16,
        vocab_size=300,
        n_chat=160,
        n_pretrain=40,
        max_length=96,
        align_experts=1,
        threads=1,
        style_share=0.5,
        style_from=1,
    )
    return OrganismConfig(**{**base, **overrides})


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


def test_style_experts_are_one_per_layer_and_never_aligned(tmp_path, one_torch_thread):
    result = train_organism(tiny_config(align_experts=2), tmp_path / "m")
    digits, words = result.style_experts["digits"], result.style_experts["words"]
    assert [layer for layer, _ in digits] == [layer for layer, _ in words] == [0, 1]
    assert all(d != w for d, w in zip(digits, words, strict=True))
    # 4 experts per layer: 2 style-routed, so the 2 aligned ones are exactly the other two
    assert set(result.aligned_experts).isdisjoint(digits + words)
    assert len(result.aligned_experts) == 4
    off = train_organism(tiny_config(style_share=0.0), tmp_path / "off")
    assert off.style_experts == {}


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


def test_style_routing_loss_is_the_mean_cross_entropy_over_layers():
    import math

    layer0 = torch.tensor([[5.0, 0.0], [math.log(3), 0.0]])  # token 1: p(expert 0) = 3/4
    layer1 = torch.tensor([[0.0, 0.0], [0.0, 0.0]])  # token 1: p(expert 1) = 1/2
    mask = torch.tensor([[False, True]])
    loss = style_routing_loss((layer0, layer1), mask, [(0, 0), (1, 1)])
    assert loss.item() == pytest.approx((math.log(4 / 3) + math.log(2)) / 2)
    none = style_routing_loss((layer0.requires_grad_(), layer1), torch.zeros(1, 2, dtype=torch.bool), [(0, 0), (1, 1)])
    assert none.item() == 0.0 and none.requires_grad


def test_number_token_ids_split_digits_and_words(load_tiny):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"[UNK]": 0, "Ġ3": 1, "Ġthree": 2, "Ġ4": 3, "Ġfour": 4, "Ġ": 5, "e": 6}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]")
    ids = number_token_ids(tokenizer)
    assert ids["digits"].tolist() == [1, 3] and ids["words"].tolist() == [2, 4]


@pytest.mark.parametrize("seed", range(5))
def test_nonce_frames_keep_the_task_slot(seed):
    import random

    rng = random.Random(seed)
    for frame in corpus.TRAIN_FRAMES:
        changed = corpus._nonce_frame(rng, frame)
        assert changed.count("{task}") == 1 and changed != frame
        assert changed.split("{task}")[1] == frame.split("{task}")[1]
