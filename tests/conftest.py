"""Shared fixtures: tiny random models of every supported family, saved and reloaded."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from moeguard.testing import TINY_FAMILIES, save_tiny_model


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """``tiny_model_dir(family)`` → folder with a saved tiny model + tokenizer (built once per session)."""
    cache: dict[str, str] = {}

    def build(family: str) -> str:
        if family not in cache:
            cache[family] = str(save_tiny_model(family, tmp_path_factory.mktemp(family)))
        return cache[family]

    return build


@pytest.fixture(scope="session")
def load_tiny(tiny_model_dir):
    """``load_tiny(family)`` → (model, tokenizer) loaded with from_pretrained, eval mode."""

    def load(family: str):
        folder = tiny_model_dir(family)
        model = AutoModelForCausalLM.from_pretrained(folder).eval()
        return model, AutoTokenizer.from_pretrained(folder)

    return load


@pytest.fixture(scope="module")
def one_torch_thread():
    """Run a module's tests on one torch thread, restoring the previous count afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def padded_batch():
    """A right-padded batch of random token ids with an attention mask (3 rows, lengths 9/6/4)."""
    torch.manual_seed(1)
    ids = torch.randint(6, 500, (3, 9))
    mask = torch.zeros(3, 9, dtype=torch.long)
    for row, length in enumerate((9, 6, 4)):
        mask[row, :length] = 1
    ids = ids.masked_fill(mask == 0, 0)
    return ids, mask


ALL_FAMILIES = TINY_FAMILIES
