"""SafeMoE fine-tuning on transformers' ``Trainer`` (DESIGN §1.4): a thin subclass plus a callback.

Two schedules keep the tuned model's routing on harmful prompts close to the aligned model's:

* ``epoch`` (published): after every task epoch, ``SafetyPassCallback.on_epoch_end`` runs a pass over the
  safety set with its own optimiser steps on ``L_route`` alone (``passes`` times, mini-batches of
  ``safety_batch_size``, learning rate ``safety_lr``, default the task learning rate, constant during the
  pass; the scheduler is not stepped). The Trainer's optimiser is reused, so its state is checkpointed
  with everything else and the same code runs under DDP/FSDP/DeepSpeed.
* ``step``: ``SafeMoETrainer.compute_loss`` returns ``L_task + λ·L_route`` on every micro-batch of every
  ``every``-th optimiser step, with ``L_route`` on the next safety mini-batch: a second, short forward
  over the safety prompts before the single backward. ``merge_batches=True`` instead appends the
  safety prompts to the task batch as extra rows (labels -100) for one forward; that pads them to the
  task length, so it only pays off when task samples are about as short as the prompts.

Nothing else of the loop is touched: logging, checkpoints (``checkpoint-N`` folders), resume
(``trainer.train(resume_from_checkpoint=...)``), gradient accumulation and mixed precision are the
Trainer's own. Safety passes are logged (``safety_route_loss``, ``safety_pass``) into the Trainer state;
on resume, a pass that a checkpoint taken at an epoch boundary did not include is run first.

Multi-GPU / DeepSpeed: launch the same script with ``accelerate launch`` (or ``torchrun``) and pass the
usual ``TrainingArguments`` (``deepspeed=...``, ``fsdp=...``). Safety forwards go through
``trainer.model_wrapped`` and ``trainer.accelerator.backward``, so DDP gradient all-reduce, DeepSpeed's
engine step and FSDP sharding apply to them exactly as to task steps; every rank draws the same safety
mini-batches (same seed), which is what the paper's single safety set implies. Under DeepSpeed the
engine owns the step: keep ``gradient_accumulation_steps=1`` with the ``epoch`` schedule (DeepSpeed
only steps at its own accumulation boundaries), or use the ``step`` schedule. The router hooks sit on
the router modules themselves, so they work inside FSDP/DeepSpeed-wrapped models. Only the CPU and
single-process paths are exercised by moeguard's tests.
"""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass, field
from typing import Literal

import torch
from torch import nn
from transformers import Trainer, TrainerCallback

from moeguard.adapters import decoder_layers, inspect_moe
from moeguard.errors import MoeguardError
from moeguard.routing.recorder import RoutingRecorder
from moeguard.routing.unwrap import input_device, routing_forward_kwargs, unwrap
from moeguard.safemoe.loss import DEFAULT_TEMPERATURE, routing_kl
from moeguard.safemoe.reference import ReferenceRouting
from moeguard.safemoe.sft import IGNORE_INDEX
from moeguard.tokens import pad_batch, token_positions

Schedule = Literal["epoch", "step"]
SCHEDULES = ("epoch", "step")


@dataclass
class SafeMoEConfig:
    """How routing alignment joins fine-tuning.

    Args:
        reference: the aligned model's routing on the safety set (``build_reference`` or
            ``ReferenceRouting.load``).
        schedule: ``"epoch"`` (published: a safety pass after each task epoch) or ``"step"`` (regulariser).
        lam: λ, weight of ``L_route`` in the ``step`` schedule (the epoch pass optimises ``L_route`` alone).
        temperature: softmax temperature T of the KL (0.1 in the paper).
        every: ``step`` schedule: add ``L_route`` on every ``every``-th optimiser step.
        safety_batch_size: prompts per safety mini-batch.
        safety_lr: ``epoch`` schedule: learning rate of the safety steps (default: the task learning rate).
        passes: ``epoch`` schedule: passes over the safety set after each task epoch (paper: 1).
        seed: order of the safety mini-batches.
        merge_batches: ``step`` schedule: run the safety prompts as extra rows of the task batch (one
            forward, prompts padded to the task length) instead of a forward of their own.
    """

    reference: ReferenceRouting
    schedule: Schedule = "epoch"
    lam: float = 1.0
    temperature: float = DEFAULT_TEMPERATURE
    every: int = 1
    safety_batch_size: int = 8
    safety_lr: float | None = None
    passes: int = 1
    seed: int = 0
    merge_batches: bool = False

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise MoeguardError(f"unknown SafeMoE schedule {self.schedule!r}; use 'epoch' (paper) or 'step'")
        if not self.temperature > 0:
            raise MoeguardError(f"--temperature must be > 0, got {self.temperature}")
        if self.lam < 0:
            raise MoeguardError(f"--lambda must be >= 0, got {self.lam}")
        if self.every < 1 or self.safety_batch_size < 1 or self.passes < 1:
            raise MoeguardError("--every, --safety-batch-size and --passes must be >= 1")
        if self.safety_lr is not None and not self.safety_lr > 0:
            raise MoeguardError(f"--safety-lr must be > 0, got {self.safety_lr}")

    def describe(self) -> dict:
        """Plain-data settings for metadata files (the reference by identity, not by value)."""
        data = {k: v for k, v in asdict(self).items() if k != "reference"}
        data["reference"] = {
            "model": self.reference.model,
            "scope": self.reference.scope,
            "num_prompts": self.reference.num_prompts,
            "prompts_sha256": self.reference.prompts_sha256,
        }
        return data


class SafetyBatches:
    """Safety-set mini-batches (prompt indices) in a seeded order that depends only on the position, so a
    resumed run draws exactly the batches the uninterrupted run would have drawn.

    ``epoch_batches(n)``: all mini-batches of pass ``n`` (``epoch`` schedule). ``at(position)``: mini-batch
    number ``position`` of an endless stream of reshuffled passes (``step`` schedule).
    """

    def __init__(self, num_prompts: int, batch_size: int, seed: int = 0):
        if num_prompts < 1:
            raise MoeguardError("the safety set is empty; give at least one harmful prompt")
        self.num_prompts = num_prompts
        self.batch_size = min(batch_size, num_prompts)
        self.seed = seed
        self._orders: dict[int, list[int]] = {}

    def order(self, key: int) -> list[int]:
        """A permutation of the safety set determined by ``(seed, key)``."""
        if key not in self._orders:
            order = list(range(self.num_prompts))
            random.Random(f"safemoe-{self.seed}-{key}").shuffle(order)
            self._orders[key] = order
        return self._orders[key]

    def epoch_batches(self, key: int) -> list[list[int]]:
        """All mini-batches of one pass (the last may be smaller)."""
        order = self.order(key)
        return [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]

    def at(self, position: int) -> list[int]:
        """Mini-batch ``position`` of the stream (consecutive passes, each in its own order)."""
        out = []
        for flat in range(position * self.batch_size, (position + 1) * self.batch_size):
            cycle, index = divmod(flat, self.num_prompts)
            out.append(self.order(-1 - cycle)[index])
        return out


class SafetyPassCallback(TrainerCallback):
    """``epoch`` schedule: a safety pass at every epoch end (and a missed one when resuming)."""

    def __init__(self, trainer: SafeMoETrainer):
        self.trainer = trainer

    def on_train_begin(self, args, state, control, **kwargs):
        completed_epochs = int(math.floor((state.epoch or 0.0) + 1e-6))
        done = sum(1 for entry in state.log_history if "safety_pass" in entry)
        for _ in range(done, completed_epochs):
            self.trainer.safety_pass()  # a checkpoint from an epoch boundary, saved before its pass

    def on_epoch_end(self, args, state, control, **kwargs):
        self.trainer.safety_pass()


class SafeMoETrainer(Trainer):
    """``transformers.Trainer`` with SafeMoE routing alignment (``safemoe=None``: a plain Trainer).

    >>> trainer = SafeMoETrainer(model=model, args=args, train_dataset=data, data_collator=collator,
    ...                          safemoe=SafeMoEConfig(reference=ReferenceRouting.load("ref.safetensors")))
    >>> trainer.train()

    ``model`` may be a PEFT model; the routers are found under the adapter wrappers.
    """

    def __init__(self, *args, safemoe: SafeMoEConfig | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.safemoe = safemoe
        self._route_sum = 0.0
        self._route_count = 0
        self._micro_step, self._micro = -1, 0
        if safemoe is None:
            return
        assert self.model is not None
        base = unwrap(self.model)
        self.moe = inspect_moe(base)
        vocab = getattr(getattr(base, "config", None), "vocab_size", None)
        safemoe.reference.check_compatible(self.moe, vocab_size=vocab)
        self._recorder = RoutingRecorder(self.moe, counts=False, traces=True, weights=False, logits=True, detach=False)
        self._batches = SafetyBatches(safemoe.reference.num_prompts, safemoe.safety_batch_size, safemoe.seed)
        self._pad_id = self._find_pad_id(base)
        if safemoe.schedule == "epoch":
            self.add_callback(SafetyPassCallback(self))

    @property
    def _cfg(self) -> SafeMoEConfig:
        """The SafeMoE settings (only used on code paths that run with SafeMoE on)."""
        assert self.safemoe is not None
        return self.safemoe

    def _find_pad_id(self, base: nn.Module) -> int:
        tokenizer = getattr(self, "processing_class", None)
        for candidate in (
            getattr(tokenizer, "pad_token_id", None),
            getattr(base.config, "pad_token_id", None),
        ):
            if isinstance(candidate, int):
                return candidate
        return 0

    # ------------------------------------------------------------------ the routing loss
    def _safety_inputs(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Right-padded safety prompts, their selected-token positions and reference rows."""
        reference = self._cfg.reference
        ids, mask = pad_batch([reference.sequences[i] for i in indices], self._pad_id, "right")
        return ids, mask, reference.rows(indices)

    def _routing_during(self, rows: torch.Tensor, forward):
        """``forward()``'s result and the differentiable router logits ``[len(rows), L, E]`` of the flat
        token positions ``rows`` of that call."""
        recorder = self._recorder
        recorder.reset()
        with recorder, recorder.selecting(rows=rows):
            result = forward()
        logits = recorder.last.logits
        recorder.reset()
        return result, logits

    def routing_loss(self, model: nn.Module, indices: list[int]) -> torch.Tensor:
        """``L_route`` of the safety prompts ``indices`` in a forward pass of their own."""
        ids, mask, reference_rows = self._safety_inputs(indices)
        device = input_device(model)
        kwargs = routing_forward_kwargs(model)
        _, current = self._routing_during(
            token_positions(mask, self._cfg.reference.scope),
            lambda: model(input_ids=ids.to(device), attention_mask=mask.to(device), **kwargs),
        )
        return routing_kl(reference_rows.to(current.device), current, self._cfg.temperature)

    def _ga_factor(self, num_items_in_batch) -> float:
        """Scale of a per-micro-batch loss added to a task loss the Trainer will (not) divide by GA steps."""
        scaled = getattr(self, "loss_is_scaled_for_ga", None)
        if scaled is None:
            scaled = (self.model_accepts_loss_kwargs and num_items_in_batch is not None) or (
                self.compute_loss_func is not None
            )
        return 1.0 / getattr(self, "current_gradient_accumulation_steps", 1) if scaled else 1.0

    def _route_now(self, model: nn.Module) -> bool:
        cfg = self.safemoe
        return (
            cfg is not None
            and cfg.schedule == "step"
            and cfg.lam > 0
            and model.training
            and self.state.global_step % cfg.every == 0
        )

    def _next_step_batch(self) -> list[int]:
        """The safety mini-batch of the current micro-batch, a function of (global step, micro-batch)."""
        step = self.state.global_step
        micro = self._micro + 1 if self._micro_step == step else 0
        self._micro_step, self._micro = step, micro
        per_step = max(1, self.args.gradient_accumulation_steps)
        return self._batches.at((step // self._cfg.every) * per_step + micro)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        """Task loss, plus ``λ·L_route`` on a safety mini-batch on routed steps of the ``step`` schedule."""
        if not self._route_now(model):
            return super().compute_loss(
                model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch
            )
        indices = self._next_step_batch()
        mergeable = set(inputs) <= {"input_ids", "attention_mask", "labels"} and "labels" in inputs
        if self._cfg.merge_batches and mergeable:
            merged, positions, reference_rows = self._merge(inputs, indices)
            (loss, outputs), current = self._routing_during(
                positions,
                lambda: super(SafeMoETrainer, self).compute_loss(
                    model, merged, return_outputs=True, num_items_in_batch=num_items_in_batch
                ),
            )
            route = routing_kl(reference_rows.to(current.device), current, self._cfg.temperature)
        else:  # a separate forward for the safety prompts
            loss, outputs = super().compute_loss(
                model, inputs, return_outputs=True, num_items_in_batch=num_items_in_batch
            )
            route = self.routing_loss(model, indices)
        self._route_sum += float(route.detach())
        self._route_count += 1
        loss = loss + self._cfg.lam * self._ga_factor(num_items_in_batch) * route.to(loss.device)
        return (loss, outputs) if return_outputs else loss

    def _merge(self, inputs: dict, indices: list[int]) -> tuple[dict, torch.Tensor, torch.Tensor]:
        """The task batch with the safety prompts appended as extra rows (labels -100)."""
        ids, mask, reference_rows = self._safety_inputs(indices)
        task_ids = inputs["input_ids"]
        device = task_ids.device
        batch, task_len = task_ids.shape
        length = max(task_len, ids.shape[1])
        task_mask = inputs.get("attention_mask", torch.ones_like(task_ids))

        def widen(tensor: torch.Tensor, value: int) -> torch.Tensor:
            if tensor.shape[1] == length:
                return tensor.to(device)
            pad = torch.full((tensor.shape[0], length - tensor.shape[1]), value, dtype=tensor.dtype, device=device)
            return torch.cat([tensor.to(device), pad], dim=1)

        merged = {
            "input_ids": torch.cat([widen(task_ids, self._pad_id), widen(ids, self._pad_id)]),
            "attention_mask": torch.cat([widen(task_mask, 0), widen(mask, 0)]),
            "labels": torch.cat(
                [
                    widen(inputs["labels"], IGNORE_INDEX),
                    torch.full((ids.shape[0], length), IGNORE_INDEX, dtype=torch.long, device=device),
                ]
            ),
        }
        positions = token_positions(widen(mask, 0), self._cfg.reference.scope) + batch * length
        return merged, positions, reference_rows

    # ------------------------------------------------------------------ the epoch schedule
    def safety_pass(self) -> float:
        """One ``epoch``-schedule safety pass: optimiser steps on ``L_route`` alone; returns the mean loss."""
        cfg = self._cfg
        model = self.model_wrapped
        model.train()
        assert self.optimizer is not None
        groups = self.optimizer.param_groups
        saved = [group["lr"] for group in groups]
        lr = cfg.safety_lr if cfg.safety_lr is not None else self.args.learning_rate
        number = 1 + sum(1 for entry in self.state.log_history if "safety_pass" in entry)  # survives resume
        losses = []
        try:
            for group in groups:
                group["lr"] = lr
            for repeat in range(cfg.passes):
                for indices in self._batches.epoch_batches(number * 100 + repeat):
                    loss = self.routing_loss(model, indices)
                    self.accelerator.backward(loss)
                    if self.args.max_grad_norm and self.args.max_grad_norm > 0:
                        self.accelerator.clip_grad_norm_(model.parameters(), self.args.max_grad_norm)
                    self.optimizer.step()
                    model.zero_grad(set_to_none=True)
                    losses.append(float(loss.detach()))
        finally:
            for group, value in zip(groups, saved, strict=True):
                group["lr"] = value
        mean = sum(losses) / len(losses)
        self.log({"safety_route_loss": mean, "safety_pass": number})
        return mean

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: nn.Module | None = None) -> None:
        """The Trainer's checkpoint loading, plus a fix for full MoE models whose checkpoints
        ``save_pretrained`` writes in the per-expert hub layout (transformers#48805): the Trainer loads
        them without converting back to fused experts, silently leaving the experts un-restored."""
        target = model if model is not None else self.model
        assert target is not None
        sharded = self.is_fsdp_enabled or self.is_deepspeed_enabled
        if sharded or not reload_converted_checkpoint(target, resume_from_checkpoint):
            super()._load_from_checkpoint(resume_from_checkpoint, model)

    def log(self, logs: dict[str, float], *args, **kwargs) -> None:
        """Adds the mean ``route_loss`` of the ``step`` schedule since the last log line."""
        if self._route_count and "loss" in logs:
            logs = {**logs, "route_loss": self._route_sum / self._route_count}
            self._route_sum, self._route_count = 0.0, 0
        super().log(logs, *args, **kwargs)


@dataclass
class LoraSettings:
    """LoRA for MoE models: ``targets`` = ``attention`` (attention projections), ``experts`` (the fused
    3-D routed-expert weights through peft's ``target_parameters``, plus per-expert ``nn.Linear`` layers
    in families that keep them) or ``all`` (both, default). Routers are never adapted; dropout is 0
    because peft's parameter wrappers cannot apply it."""

    r: int = 8
    alpha: int = 8
    targets: Literal["attention", "experts", "all"] = "all"
    #: Decoder-layer indices to adapt (None: every layer), e.g. to ask which layers an attack needs.
    layers: tuple[int, ...] | None = None
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.targets not in ("attention", "experts", "all"):
            raise MoeguardError(f"unknown LoRA targets {self.targets!r}; use attention, experts or all")
        if self.r < 1 or self.alpha < 1:
            raise MoeguardError(f"LoRA rank and alpha must be >= 1, got r={self.r}, alpha={self.alpha}")
        if self.layers is not None:
            self.layers = tuple(sorted(set(self.layers)))
            if not self.layers or self.layers[0] < 0:
                raise MoeguardError(f"LoRA layers must be decoder-layer indices >= 0, got {list(self.layers)}")


def _lora_scopes(base: nn.Module, layers: tuple[int, ...] | None) -> list[tuple[str, nn.Module]]:
    """``(name prefix, module)`` to search for LoRA weights: the whole model, or the chosen decoder layers
    (found by :func:`moeguard.adapters.decoder_layers`)."""
    if layers is None:
        return [("", base)]
    stack = decoder_layers(base)
    missing = [i for i in layers if i >= len(stack)]
    if missing:
        raise MoeguardError(
            f"LoRA layers {missing} are not in the model (decoder layers 0-{len(stack) - 1}); use indices in that range"
        )
    names = {id(module): name for name, module in base.named_modules()}
    return [(names[id(stack[i])], stack[i]) for i in layers]


def lora_targets(
    model: nn.Module, targets: str = "all", layers: tuple[int, ...] | None = None
) -> tuple[list[str], list[str]]:
    """``(target_modules, target_parameters)`` for peft on an MoE model (see ``LoraSettings``): short names
    that match every layer, or with ``layers`` the full names of those decoder layers' weights only."""
    if targets not in ("attention", "experts", "all"):
        raise MoeguardError(f"unknown LoRA targets {targets!r}; use attention, experts or all")
    base = unwrap(model)
    modules: set[str] = set()
    parameters: set[str] = set()
    for prefix, scope in _lora_scopes(base, layers):
        for name, module in scope.named_modules(prefix=prefix):
            parts = name.split(".")
            key = parts[-1] if layers is None else name
            in_attention = any("attn" in p or "attention" in p for p in parts[:-1])
            in_experts = any(p == "experts" for p in parts[:-1])
            if isinstance(module, nn.Linear) and targets in ("attention", "all") and in_attention:
                modules.add(key)
            if targets in ("experts", "all"):
                if isinstance(module, nn.Linear) and in_experts:
                    modules.add(key)
                if parts[-1] == "experts":
                    for param_name, param in module.named_parameters(recurse=False):
                        if param.dim() == 3:
                            parameters.add(f"{key}.{param_name}")
    if not modules and not parameters:
        raise MoeguardError(
            f"found no {targets} weights to adapt with LoRA in {type(base).__name__}; use --lora-targets all"
        )
    return sorted(modules), sorted(parameters)


def apply_lora(model: nn.Module, settings: LoraSettings):
    """Wrap ``model`` with a peft LoRA adapter (r, alpha, targets from ``settings``)."""
    from peft import LoraConfig, get_peft_model

    modules, parameters = lora_targets(model, settings.targets, settings.layers)
    config = LoraConfig(
        r=settings.r,
        lora_alpha=settings.alpha,
        lora_dropout=0.0,
        target_modules=modules or [],
        target_parameters=parameters or None,
        task_type="CAUSAL_LM",
        **settings.extra,
    )
    return get_peft_model(model, config)


def reload_converted_checkpoint(model: nn.Module, checkpoint: str) -> bool:
    """Reload a full-model checkpoint through ``from_pretrained`` (which applies the weight conversions)
    when its tensor names differ from the model's; returns True when it did. PEFT models are left alone."""
    from pathlib import Path

    from safetensors import safe_open

    if hasattr(model, "peft_config") or not hasattr(model, "from_pretrained"):
        return False
    folder = Path(checkpoint)
    files = sorted(folder.glob("model*.safetensors"))
    if not files:
        return False
    keys: set[str] = set()
    for file in files:
        with safe_open(str(file), framework="pt") as handle:
            keys.update(handle.keys())
    own = set(model.state_dict())
    if own <= keys:
        return False
    dtype = next(model.parameters()).dtype
    fresh = type(model).from_pretrained(str(folder), dtype=dtype)  # type: ignore[attr-defined]
    missing, unexpected = model.load_state_dict(fresh.state_dict(), strict=False)
    if missing:
        raise MoeguardError(f"checkpoint {checkpoint} lacks {len(missing)} weights of the model (e.g. {missing[0]})")
    return True
