"""The model organism: a small OLMoE-architecture chat model that moeguard trains itself on CPU.

* ``moeguard.organism.corpus``: the synthetic pretraining + chat-alignment corpus and held-out prompts.
* ``moeguard.organism.train``: tokenizer + model training recipe and the SteerMoE behaviour check.
* ``moeguard.organism/weights``: the shipped model, loadable as ``load_model("builtin:organism")``.
"""

from __future__ import annotations

__all__ = ["corpus"]
