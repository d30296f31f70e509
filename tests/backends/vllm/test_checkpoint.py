"""Model folders for vLLM: the untied copy computes the same function; the loader caches it transparently."""

from __future__ import annotations

import pytest
import torch

from moeguard.backends.vllm.checkpoint import needs_untied_copy, vllm_model_path, write_untied_copy
from moeguard.errors import MoeguardError
from moeguard.models import load_model, resolve_model_path


def test_untied_copy_has_an_lm_head_and_the_same_logits(tmp_path):
    source = resolve_model_path("builtin:organism")
    assert needs_untied_copy(source)
    target = write_untied_copy(source, tmp_path / "untied")
    assert not needs_untied_copy(target)
    tied, tok = load_model("builtin:organism")
    untied, _ = load_model(str(target))
    assert not untied.config.tie_word_embeddings
    ids = tok("How do I bake bread?", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        assert torch.equal(tied(ids).logits, untied(ids).logits)


def test_vllm_model_path_unties_builtin_models_once_into_the_cache(tmp_path, monkeypatch, tiny_model_dir):
    monkeypatch.setenv("MOEGUARD_CACHE_DIR", str(tmp_path / "cache"))
    first = vllm_model_path("builtin:organism")
    assert first.startswith(str(tmp_path / "cache")) and not needs_untied_copy(first)
    mtime = (tmp_path / "cache").stat().st_mtime_ns
    assert vllm_model_path("builtin:organism") == first
    assert sorted(p.name for p in (tmp_path / "cache" / "vllm-untied").iterdir()) == [first.rsplit("/", 1)[1]]
    assert (tmp_path / "cache").stat().st_mtime_ns == mtime
    untied = tiny_model_dir("olmoe")  # tiny test models are untied: served from where they are
    assert vllm_model_path(untied) == untied


def test_adapter_folders_are_refused(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "adapter_config.json").write_text("{}")
    with pytest.raises(MoeguardError, match="LoRA adapter folder"):
        vllm_model_path(str(tmp_path))
