"""Tiny local judge models (random weights, tiny tokenizer with a chat template), built without downloads."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="session")
def tiny_judge_dir(tmp_path_factory):
    """A saved tiny random LlamaForCausalLM + tokenizer (chat template of moeguard.testing)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from moeguard.testing import train_test_tokenizer

    folder = tmp_path_factory.mktemp("tiny-judge")
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=512,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=1,
    )
    LlamaForCausalLM(config).save_pretrained(folder)
    train_test_tokenizer(vocab_size=512).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_classifier_dir(tmp_path_factory):
    """A saved tiny random LlamaForSequenceClassification with three labels + tokenizer."""
    from transformers import LlamaConfig, LlamaForSequenceClassification

    from moeguard.testing import train_test_tokenizer

    folder = tmp_path_factory.mktemp("tiny-classifier")
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=512,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=1,
        num_labels=3,
        id2label={0: "SAFE", 1: "UNSAFE", 2: "CONTROVERSIAL"},
        label2id={"SAFE": 0, "UNSAFE": 1, "CONTROVERSIAL": 2},
    )
    LlamaForSequenceClassification(config).save_pretrained(folder)
    train_test_tokenizer(vocab_size=512).save_pretrained(folder)
    return folder
