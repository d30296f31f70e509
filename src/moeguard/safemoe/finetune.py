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
            raise MoeguardError(f"checkpoint {resume} does not exist; pass a checkpoint-N folder or --resume alone")
        return resume
    from transformers.trainer_utils import get_last_checkpoint

    last = get_last_checkpoint(str(output_dir)) if Path(output_dir).is_dir() else None
    if last is None:
        raise MoeguardError(f"no checkpoint-N folder in {output_dir} to resume from; drop --resume")
    return last


RUN_FILE = "run.json"


def run_identity(
    settings: FinetuneSettings, conversations: Sequence[Messages], safemoe: SafeMoEConfig | None, model_name: str | None
) -> dict:
    """What makes two fine-tuning runs the same run (model, data, settings, SafeMoE config) and its hash."""
    identity = {
        "model": model_name,
        "data_sha256": sha256_of(json.dumps(list(conversations), sort_keys=True, ensure_ascii=False)),
        # where a run stops or checkpoints is not what it is: a run stopped early can be resumed further
        "settings": {
            k: v
            for k, v in settings.describe().items()
            if k not in ("max_steps", "save_steps", "save_total_limit", "logging_steps")
        },
        "safemoe": safemoe.describe() if safemoe is not None else None,
    }
    identity["sha256"] = sha256_of(json.dumps(identity, sort_keys=True, default=str))
    return identity


def prepare_output(output_dir: Path, identity: dict, resume: bool | str | None, overwrite: bool) -> None:
    """Refuse to mix runs: a non-empty folder needs ``resume`` (same run only) or ``overwrite``."""
    import shutil

    run_file = output_dir / RUN_FILE
    if resume:
        if not run_file.is_file():
            raise MoeguardError(f"{output_dir} has no {RUN_FILE}: not a moeguard fine-tuning run to resume")
        recorded = json.loads(run_file.read_text(encoding="utf-8"))
        if recorded.get("sha256") != identity["sha256"]:
            changed = sorted(
                k
                for k in ("model", "data_sha256", "settings", "safemoe")
                if recorded.get(k) != json.loads(json.dumps(identity[k], default=str))
            )
            raise MoeguardError(
                f"--resume: the checkpoint in {output_dir} belongs to another run ({', '.join(changed) or 'settings'}"
                " differ); resume with the same settings and data, or start a new --output"
            )
        return
    if output_dir.is_dir() and any(output_dir.iterdir()):
        if not overwrite:
            raise MoeguardError(
                f"--output {output_dir} is not empty; pass a new folder, --resume to continue its run, or --overwrite"
            )
        for checkpoint in output_dir.glob("checkpoint-*"):
            shutil.rmtree(checkpoint)
    write_json_atomic(run_file, identity)


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
    overwrite: bool = False,
    progress: bool = False,
) -> FinetuneResult:
    """Fine-tune ``model`` on ``conversations`` (loss on assistant tokens) with optional SafeMoE alignment.

    With ``settings.lora`` the model is wrapped with a LoRA adapter first (the returned model is the
    PEFT model). ``resume=True`` continues from the newest checkpoint in ``output_dir`` — of the same run only
    (``run.json`` records its identity); a non-empty ``output_dir`` otherwise needs ``overwrite``.
    ``progress`` replaces the Trainer's console output by one progress bar.
    """
    from transformers import set_seed

    settings = settings or FinetuneSettings()
    output_dir = Path(output_dir)
    set_seed(settings.seed)
    prepare_output(output_dir, run_identity(settings, conversations, safemoe, model_name), resume, overwrite)
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
    if progress:
        from moeguard.safemoe.progress import use_rich_progress

        use_rich_progress(trainer)
    start = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=resolve_resume(output_dir, resume))
    seconds = time.perf_counter() - start
    tuned: Any = trainer.model  # a transformers or PEFT model
    tuned.eval()
    metrics = dict(result.metrics)
    if save_final:
        tuned.save_pretrained(output_dir)
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
    return FinetuneResult(model=tuned, trainer=trainer, metrics=metrics, output_dir=output_dir, seconds=seconds)
