"""SafeMoE: routing-aligned fine-tuning, the harmful fine-tuning (HFT) attack and routing drift (DESIGN §1.4).

>>> from moeguard.safemoe import build_reference, routing_kl, SafeMoEConfig, finetune, FinetuneSettings
>>> reference = build_reference(aligned, tokenizer, harmful_prompts)          # [N, L, E] router logits
>>> reference.save("ref.safetensors")
>>> finetune(model, tokenizer, conversations, "out/", FinetuneSettings(lora=LoraSettings()),
...          safemoe=SafeMoEConfig(reference=reference, schedule="epoch"))

Modules: ``loss`` (``routing_kl``), ``routing`` (router logits at prompt tokens, through the routing core's
recorder), ``reference``
(cached aligned routing), ``sft`` (chat data, assistant-only labels), ``trainer`` (``SafeMoETrainer``,
``SafetyPassCallback``, LoRA targets), ``finetune`` (one-call runner), ``attack`` (HFT sets), ``drift``.
"""

from moeguard.safemoe.attack import build_attack_set
from moeguard.safemoe.drift import (
    DriftReport,
    drift_from_reference,
    measure_drift,
    routing_drift,
    topk_jaccard,
)
from moeguard.safemoe.finetune import FinetuneResult, FinetuneSettings, finetune
from moeguard.safemoe.loss import DEFAULT_TEMPERATURE, routing_kl, routing_kl_per_layer
from moeguard.safemoe.reference import ReferenceRouting, build_reference
from moeguard.safemoe.routing import prompt_routing, token_routing
from moeguard.safemoe.sft import SFTCollator, SFTDataset, encode_conversation, read_sft_file
from moeguard.safemoe.trainer import (
    LoraSettings,
    SafeMoEConfig,
    SafeMoETrainer,
    SafetyPassCallback,
    apply_lora,
    lora_targets,
)

__all__ = [
    "DEFAULT_TEMPERATURE",
    "DriftReport",
    "FinetuneResult",
    "FinetuneSettings",
    "LoraSettings",
    "ReferenceRouting",
    "SFTCollator",
    "SFTDataset",
    "SafeMoEConfig",
    "SafeMoETrainer",
    "SafetyPassCallback",
    "apply_lora",
    "build_attack_set",
    "build_reference",
    "drift_from_reference",
    "encode_conversation",
    "finetune",
    "lora_targets",
    "measure_drift",
    "prompt_routing",
    "read_sft_file",
    "routing_drift",
    "routing_kl",
    "routing_kl_per_layer",
    "token_routing",
    "topk_jaccard",
]
