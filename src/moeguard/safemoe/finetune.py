"""One call from conversations to a fine-tuned model folder (the library side of ``moeguard finetune``).

Output folder layout: ``checkpoint-N/`` (the Trainer's own checkpoints: model or adapter, optimiser,
scheduler, RNG and trainer state — resume from them), then the final model (``save_pretrained``: a full
model, or a LoRA adapter with ``adapter_config.json``), the tokenizer and ``finetune.json`` (settings,
data hash, seed, metrics, wall time).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from moeguard.artifacts import run_metadata, sha256_of, write_json_atomic
from moeguard.errors import MoeguardError
from moeguard.safemoe.sft import Messages, SFTCollator, SFTDataset
from moeguard.safemoe.trainer import LoraSettings, SafeMoEConfig, SafeMoETrainer, apply_lora
from moeguard.tokens import pad_id_of


@dataclass
class FinetuneSettings:
    """Training settings (defaults: the published SafeMoE recipe — lr 1e-4, 3 epochs)."""

    epochs: float = 3.0
    learning_rate: float = 1e-4
    batch_size: int = 8
    grad_accum: int = 1
    max_steps: int = -1
    max_length: int = 512
    lr_scheduler: str = "linear"
    warmup: float = 0.0
    weight_decay: float = 0.0
    save_steps: int | None = None
    save_total_limit: int | None = 2
    logging_steps: int = 10
    seed: int = 0
    lora: LoraSettings | None = None
    training_args: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> dict:
        """Plain-data settings for ``finetune.json``."""
        return asdict(self)


@dataclass
class FinetuneResult:
    """The tuned model (a PEFT model with LoRA), its trainer, metrics and the output folder."""

    model: nn.Module
    trainer: SafeMoETrainer
    metrics: dict
    output_dir: Path
    seconds: float


def training_arguments(output_dir: str | Path, settings: FinetuneSettings, has_eval: bool = False):
    """``TrainingArguments`` for ``settings`` (checkpoints every ``save_steps`` or every epoch)."""
    from transformers import TrainingArguments

    save = (
        {"save_strategy": "steps", "save_steps": settings.save_steps}
        if settings.save_steps
        else {"save_strategy": "epoch"}
    )
    kwargs: dict[str, Any] = dict(
        output_dir=str(output_dir),
        num_train_epochs=settings.epochs,
        max_steps=settings.max_steps,
        learning_rate=settings.learning_rate,
        per_device_train_batch_size=settings.batch_size,
        gradient_accumulation_steps=settings.grad_accum,
        lr_scheduler_type=settings.lr_scheduler,
        warmup_steps=settings.warmup,
        weight_decay=settings.weight_decay,
        save_total_limit=settings.save_total_limit,
        logging_steps=settings.logging_steps,
        seed=settings.seed,
        data_seed=settings.seed,
        report_to="none",
        remove_unused_columns=False,
        dataloader_num_workers=0,
        **save,
    )
    kwargs.update(settings.training_args)
    return TrainingArguments(**kwargs)


def resolve_resume(output_dir: str | Path, resume: bool | str | None) -> str | None:
    """``True``: the newest ``checkpoint-N`` in ``output_dir``; a path: that checkpoint; else None."""
    if not resume:
        return None
    if isinstance(resume, str):
        if not Path(resume).is_dir():
            raise MoeguardError(
                f"checkpoint {resume} does not exist; pass a checkpoint-N folder or --resume alone"
            )
        return resume
    from transformers.trainer_utils import get_last_checkpoint

    last = get_last_checkpoint(str(output_dir)) if Path(output_dir).is_dir() else None
    if last is None:
        raise MoeguardError(f"no checkpoint-N folder in {output_dir} to resume from; drop --resume")
    return last


def finetune(
    model: nn.Module,
    tokenizer,
    conversations: Sequence[Messages],
    output_dir: str | Path,
    settings: FinetuneSettings | None = None,
    safemoe: SafeMoEConfig | None = None,
    resume: bool | str | None = None,
    model_name: str | None = None,
    callbacks: list | None = None,
    save_final: bool = True,
) -> FinetuneResult:
    """Fine-tune ``model`` on ``conversations`` (loss on assistant tokens) with optional SafeMoE alignment.

    With ``settings.lora`` the model is wrapped with a LoRA adapter first (the returned model is the
    PEFT model). ``resume=True`` continues from the newest checkpoint in ``output_dir``.
    """
    from transformers import set_seed

    settings = settings or FinetuneSettings()
    output_dir = Path(output_dir)
    set_seed(settings.seed)
    dataset = SFTDataset(tokenizer, conversations, settings.max_length)
    if settings.lora is not None:
        model = apply_lora(model, settings.lora)
    args = training_arguments(output_dir, settings)
    trainer = SafeMoETrainer(
        model=model,
        args=args,
        train_dataset=dataset,
        data_collator=SFTCollator(pad_id_of(tokenizer)),
        processing_class=tokenizer,
        safemoe=safemoe,
        callbacks=callbacks,
    )
    start = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=resolve_resume(output_dir, resume))
    seconds = time.perf_counter() - start
    model = trainer.model
    model.eval()
    metrics = dict(result.metrics)
    if save_final:
        model.save_pretrained(output_dir)
        tokenizer.save_pretrained(output_dir)
        if settings.lora is not None and model_name is not None:
            from moeguard.models import record_adapter_base

            record_adapter_base(output_dir, model_name)
        meta = run_metadata(
            model_name,
            seed=settings.seed,
            data_sha256=sha256_of(json.dumps(list(conversations), sort_keys=True, ensure_ascii=False)),
            examples=len(dataset),
            dropped_examples=dataset.dropped,
            settings=settings.describe(),
            safemoe=safemoe.describe() if safemoe is not None else None,
            metrics=metrics,
            train_seconds=seconds,
            lora=settings.lora is not None,
        )
        write_json_atomic(output_dir / "finetune.json", meta)
    return FinetuneResult(
        model=model, trainer=trainer, metrics=metrics, output_dir=output_dir, seconds=seconds
    )
