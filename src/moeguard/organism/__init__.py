"""The model organism: a small OLMoE-architecture chat model that moeguard trains itself on CPU.

* ``moeguard.organism.corpus``: the synthetic pretraining + chat-alignment corpus and held-out prompts.
* ``moeguard.organism.train``: tokenizer + model training recipe and the model card.
* ``moeguard.organism.check``: held-out behaviour and the SteerMoE check (model card, slow test).
* ``moeguard.organism/weights``: the shipped model, loadable as ``load_model("builtin:organism")``.
"""

from __future__ import annotations

__all__ = ["STEERING_SETTINGS", "corpus"]

#: Expert counts the shipped organism is validated with (``moeguard demo``, ``organism.check``): safe steering
#: activates ``safe_activate`` refusal-linked experts; unsafe steering activates ``unsafe_activate``
#: compliance-linked and deactivates ``unsafe_deactivate`` refusal-linked ones; digits/words steering uses
#: ``digits_activate`` / ``digits_deactivate``; faithfulness steering ``document_activate`` /
#: ``document_deactivate`` (reversed for "steer to memory").
STEERING_SETTINGS: dict[str, int] = {
    "safe_activate": 1,
    "unsafe_activate": 0,
    "unsafe_deactivate": 8,
    "digits_activate": 4,
    "digits_deactivate": 0,
    "document_activate": 4,
    "document_deactivate": 0,
}
