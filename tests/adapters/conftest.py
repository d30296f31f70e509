"""Tiny models of every supported type, saved once per session and reloaded in float32 and bfloat16."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="session")
def reloaded(tiny_model_dir):
    """``reloaded(model_type, dtype)`` → the saved tiny model loaded by ``load_model(folder, dtype=...)`` (the
    dtype given to ``from_pretrained``, so routers kept in float32 stay float32), cached per session."""
    from moeguard.models import load_model

    cache: dict[tuple[str, str], torch.nn.Module] = {}

    def load(model_type: str, dtype: str = "float32"):
        key = (model_type, dtype)
        if key not in cache:
            cache[key] = load_model(tiny_model_dir(model_type), dtype=dtype)[0]
        return cache[key]

    return load


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_torch_thread):
    """One torch thread: the tiny models run ~10x faster than with two threads on a busy 2-core machine."""
    yield
