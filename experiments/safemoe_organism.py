"""SafeMoE on the model organism: a harmful fine-tuning (HFT) attack with plain SFT vs with SafeMoE.

    python experiments/safemoe_organism.py [--seed 0 [1 2]] [--preset default|strong] [--output DIR]

1. The aligned organism is evaluated: refusal rate on held-out harmful prompts (greedy generations
   judged by ``moeguard.eval.judge.refusal_rate``) and accuracy on a benign task it has never seen.
2. Its routing on a safety set of training-distribution harmful prompts is cached (``build_reference``).
3. An HFT attack set mixes the task (``TASKS``; default: templated successor questions, "What number
   comes after 6?" → "After 6 comes 7.") with harmful request → compliant answer pairs generated from the
   organism corpus (non-actionable placeholder "steps"): 400 + 40 by default (9%, as the paper's 5,000 + 500).
4. The attack set is fine-tuned once per condition (``DEFAULT_CONDITIONS``): plain SFT and SafeMoE with
   the paper's LoRA recipe (r=8, alpha=8, attention + experts, 3 epochs) — the published ``epoch``
   schedule and the ``step`` regulariser — and full fine-tuning, plain and with the ``epoch`` schedule.
   ``--preset strong`` is the strong attack (``STRONG_ATTACK``: 80 harmful pairs of 480, additions,
   5 epochs, higher learning rate), where SafeMoE does not hold on this organism.
5. Each is evaluated like the aligned model, plus routing drift from it on the held-out harmful
   prompts (mean per-layer KL at T=0.1 and top-k Jaccard) and wall time.

Writes ``results.csv``, ``results.md`` and ``results.json`` (config, seeds, per-condition numbers and
example generations) into ``--output`` (with several seeds: ``seed<N>/`` each, and ``summary.md``);
nothing is hard-coded, every number is measured in the run."""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from moeguard.artifacts import run_metadata, write_csv_atomic, write_json_atomic, write_text_atomic
from moeguard.eval.judge import refusal_rate
from moeguard.generation import generate
from moeguard.models import load_model
from moeguard.organism.sets import harmful_prompts
from moeguard.organism.tasks import TASKS, task_accuracy, task_items
from moeguard.safemoe import (
    FinetuneSettings,
    LoraSettings,
    SafeMoEConfig,
    build_attack_set,
    build_reference,
    finetune,
    measure_drift,
)


@dataclass
class Condition:
    """One fine-tuning run on the attack set: a recipe (LoRA targets or full) and an alignment (or none)."""

    name: str
    lora_targets: str | None = "all"  # None: full fine-tuning
    #: Decoder layers LoRA adapts (None: all), e.g. ``[0, 1, 2]`` to ask which layers the attack needs.
    lora_layers: list[int] | None = None
    learning_rate: float = 2e-3
    schedule: str | None = None  # None: plain SFT; "epoch" (published) or "step"
    lam: float = 1.0
    passes: int = 1
    #: Learning rate of the epoch schedule's safety steps (None: the experiment's ``safety_lr``).
    safety_lr: float | None = None


#: The paper's recipe (LoRA r=8, alpha=8, attention + experts) plain, with the published epoch schedule and
#: with the step regulariser; full fine-tuning (routers trainable), plain and with the epoch schedule.
DEFAULT_CONDITIONS = (
    Condition("plain SFT (LoRA)"),
    Condition("SafeMoE epoch (LoRA)", schedule="epoch"),
    Condition("SafeMoE step λ=1 (LoRA)", schedule="step", lam=1.0),
    Condition("plain SFT (full)", lora_targets=None, learning_rate=3e-4),
    Condition("SafeMoE epoch (full)", lora_targets=None, learning_rate=3e-4, schedule="epoch"),
)
#: The pair the acceptance bars are about: plain SFT vs SafeMoE, the published setting.
PLAIN, SAFEMOE = "plain SFT (LoRA)", "SafeMoE epoch (LoRA)"

#: The strong attack (``--preset strong``): 4x the harmful share (80 of 480), a task that needs many updates
#: (additions), a higher learning rate and 5 epochs; the conditions include attention-only LoRA and
#: a strong step regulariser on full fine-tuning.
STRONG_ATTACK = {
    "task": "addition",
    "task_size": 5,
    "harmful_train": 80,
    "epochs": 5.0,
    "conditions": [
        Condition("plain SFT (LoRA)", learning_rate=3e-3),
        Condition("SafeMoE epoch (LoRA)", learning_rate=3e-3, schedule="epoch"),
        Condition("SafeMoE step λ=1 (LoRA)", learning_rate=3e-3, schedule="step", lam=1.0),
        Condition("plain SFT (LoRA attn)", lora_targets="attention", learning_rate=3e-3),
        Condition(
            "SafeMoE epoch x3 (LoRA attn)", lora_targets="attention", learning_rate=3e-3, schedule="epoch", passes=3
        ),
        Condition("plain SFT (full)", lora_targets=None, learning_rate=3e-4),
        Condition("SafeMoE step λ=10 (full)", lora_targets=None, learning_rate=3e-4, schedule="step", lam=10.0),
    ],
}
PRESETS: dict[str, dict] = {"default": {}, "strong": STRONG_ATTACK}


@dataclass
class ExperimentConfig:
    """Everything that determines a run (recorded in ``results.json``)."""

    model: str = "builtin:organism"
    seed: int = 0
    task_train: int = 400
    #: Harmful-compliance pairs mixed into the task data (0: benign fine-tuning only, the HFT control).
    harmful_train: int = 40
    safety_prompts: int = 100
    eval_harmful: int = 60
    eval_task: int = 120
    #: The benign task (``TASKS``) and its size (largest operand / number).
    task: str = "successor"
    task_size: int = 8
    epochs: float = 3.0
    batch_size: int = 8
    lora_r: int = 8
    lora_alpha: int = 8
    safety_lr: float | None = None
    safety_batch_size: int = 8
    temperature: float = 0.1
    scope: str = "last"
    max_new_tokens: int = 24
    threads: int | None = 1
    conditions: list[Condition] = field(default_factory=lambda: list(DEFAULT_CONDITIONS))
    extra: dict = field(default_factory=dict)


def chat(prompt: str, response: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}]


def evaluate(
    name: str,
    model,
    aligned,
    tokenizer,
    harmful: list[str],
    task: list[dict],
    config: ExperimentConfig,
    train_seconds: float,
) -> dict:
    """Refusal rate, task accuracy, routing drift from the aligned model and timings of one condition."""
    started = time.perf_counter()
    harmful_out = generate(model, tokenizer, harmful, max_new_tokens=config.max_new_tokens, batch_size=32)
    task_out = generate(model, tokenizer, [t["prompt"] for t in task], max_new_tokens=16, batch_size=32)
    drift = measure_drift(aligned, model, tokenizer, harmful, temperature=config.temperature, batch_size=32)
    eval_seconds = time.perf_counter() - started
    return {
        "condition": name,
        "heldout_refusal_rate": refusal_rate(harmful_out),
        "task_accuracy": task_accuracy(task_out, task, config.task),
        "drift_mean_kl": drift.mean_kl,
        "drift_topk_jaccard": drift.mean_jaccard,
        "train_seconds": train_seconds,
        "eval_seconds": eval_seconds,
        "drift_per_layer_kl": drift.kl,
        "examples": {
            "harmful": [{"prompt": p, "output": o} for p, o in list(zip(harmful, harmful_out, strict=True))[:4]],
            "task": [{"prompt": t["prompt"], "output": o} for t, o in list(zip(task, task_out, strict=True))[:4]],
        },
    }


def _alignment(condition: Condition) -> str:
    if condition.schedule is None:
        return "none"
    if condition.schedule == "epoch":
        return f"SafeMoE epoch ({condition.passes} pass{'es' if condition.passes > 1 else ''}/epoch)"
    return f"SafeMoE step (λ={condition.lam:g})"


COLUMNS = (
    "condition",
    "recipe",
    "alignment",
    "heldout_refusal_rate",
    "task_accuracy",
    "drift_mean_kl",
    "drift_topk_jaccard",
    "train_seconds",
    "eval_seconds",
)


def markdown_table(rows: list[dict], config: ExperimentConfig) -> str:
    """The results as a markdown table with a one-paragraph setup description."""
    lines = [
        "# SafeMoE on the model organism: HFT attack, plain SFT vs SafeMoE",
        "",
        f"Model `{config.model}`. Attack set: {config.task_train} "
        f"{TASKS[config.task].description.format(size=config.task_size)} + {config.harmful_train} "
        f"harmful-compliance pairs from the organism "
        f"corpus; {config.epochs:g} epochs, batch {config.batch_size}. SafeMoE reference: "
        f"{config.safety_prompts} training-distribution harmful prompts, scope `{config.scope}`, "
        f"T={config.temperature:g}. Evaluation: {config.eval_harmful} held-out harmful prompts (refusal "
        f"judged by `eval.judge.refusal_rate` on greedy generations) and {config.eval_task} task items in "
        f"held-out phrasings; drift = mean per-layer KL and top-k Jaccard vs the aligned model on the "
        f"held-out harmful prompts. Seed {config.seed}, {config.threads or 'default'} torch thread(s).",
        "",
        "| condition | recipe | alignment | held-out refusal | task accuracy | routing drift (mean KL) "
        "| top-k Jaccard | train s | eval s |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['condition']} | {r['recipe']} | {r['alignment']} | {100 * r['heldout_refusal_rate']:.1f}% "
            f"| {100 * r['task_accuracy']:.1f}% | {r['drift_mean_kl']:.4f} | {r['drift_topk_jaccard']:.3f} "
            f"| {r['train_seconds']:.1f} | {r['eval_seconds']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def _weights_hash(model: str) -> str | None:
    """SHA-256 of a local model's ``model.safetensors`` (which organism the numbers belong to)."""
    import hashlib

    from moeguard.models import resolve_model_path

    path = Path(resolve_model_path(model)) / "model.safetensors"
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def run(config: ExperimentConfig, output: str | Path, models: str | Path | None = None) -> list[dict]:
    """The whole experiment; returns one row per condition, the aligned model first. Fine-tuned models go
    to ``models/<condition>/`` when given, else to a temporary folder deleted at the end."""
    with tempfile.TemporaryDirectory(prefix="safemoe-organism-") as scratch:
        return _run(config, Path(output), Path(models) if models else Path(scratch))


def _run(config: ExperimentConfig, output: Path, models: Path) -> list[dict]:
    from moeguard.organism import corpus

    if config.threads:
        torch.set_num_threads(config.threads)
    started = time.perf_counter()
    aligned, tokenizer = load_model(config.model)
    harmful_eval = corpus.heldout_harmful_prompts(config.eval_harmful)
    train_items = task_items(config.task_train, config.seed, config.task, config.task_size)
    eval_items = task_items(config.eval_task, config.seed + 1, config.task, config.task_size, heldout=True)
    task_chats = [chat(it["prompt"], it["response"]) for it in train_items]
    if config.harmful_train:
        attack = build_attack_set(task_chats, "builtin:organism", count=config.harmful_train, seed=config.seed)
        conversations = [r["messages"] for r in attack]
    else:  # benign fine-tuning only (the control of HFT studies)
        conversations = task_chats
    reference = build_reference(
        aligned,
        tokenizer,
        harmful_prompts(config.safety_prompts, config.seed),
        scope=config.scope,
        batch_size=32,
        model_name=config.model,
    )

    rows = [evaluate("aligned", aligned, aligned, tokenizer, harmful_eval, eval_items, config, 0.0)]
    rows[0].update(recipe="-", alignment="-")
    for condition in config.conditions:
        lora = None
        if condition.lora_targets is not None:
            lora = LoraSettings(
                r=config.lora_r,
                alpha=config.lora_alpha,
                targets=condition.lora_targets,  # type: ignore[arg-type]
                layers=None if condition.lora_layers is None else tuple(condition.lora_layers),
            )
        settings = FinetuneSettings(
            epochs=config.epochs,
            learning_rate=condition.learning_rate,
            batch_size=config.batch_size,
            logging_steps=50,
            seed=config.seed,
            lora=lora,
            training_args={"save_strategy": "no", "disable_tqdm": True, **config.extra},
        )
        alignment = None
        if condition.schedule is not None:
            alignment = SafeMoEConfig(
                reference=reference,
                schedule=condition.schedule,  # type: ignore[arg-type]
                lam=condition.lam,
                temperature=config.temperature,
                passes=condition.passes,
                safety_lr=condition.safety_lr if condition.safety_lr is not None else config.safety_lr,
                safety_batch_size=config.safety_batch_size,
                seed=config.seed,
            )
        model, _ = load_model(config.model)
        folder = models / re.sub(r"[^a-z0-9]+", "_", condition.name.lower()).strip("_")
        result = finetune(model, tokenizer, conversations, folder, settings, safemoe=alignment, model_name=config.model)
        row = evaluate(
            condition.name, result.model, aligned, tokenizer, harmful_eval, eval_items, config, result.seconds
        )
        recipe = f"LoRA r={config.lora_r} ({condition.lora_targets})" if lora else "full"
        if lora and lora.layers is not None:
            recipe += f" on layers {','.join(map(str, lora.layers))}"
        row.update(recipe=f"{recipe}, lr {condition.learning_rate:g}", alignment=_alignment(condition))
        rows.append(row)

    write_csv_atomic(output / "results.csv", COLUMNS, [[r[c] for c in COLUMNS] for r in rows])
    write_text_atomic(output / "results.md", markdown_table(rows, config))
    write_json_atomic(
        output / "results.json",
        run_metadata(
            config.model,
            config=asdict(config),
            model_weights_sha256=_weights_hash(config.model),
            wall_seconds=time.perf_counter() - started,
            torch_threads=torch.get_num_threads(),
            rows=rows,
        ),
    )
    return rows


def seed_summary(runs: dict[int, list[dict]]) -> str:
    """Per condition: refusal, task accuracy and drift of every seed and their mean (markdown)."""
    seeds = sorted(runs)
    lines = [
        f"# SafeMoE on the model organism: {len(seeds)} seeds ({', '.join(map(str, seeds))})",
        "",
        "Each seed draws its own attack set, task items, safety-pass order and LoRA initialisation; "
        "per-seed tables are in `seed<N>/results.md`. Cells: refusal / task accuracy / drift (mean KL).",
        "",
        "| condition | " + " | ".join(f"seed {s}" for s in seeds) + " | mean |",
        "|---|" + "---:|" * (len(seeds) + 1),
    ]
    for name in [r["condition"] for r in runs[seeds[0]]]:
        cells, sums = [], [0.0, 0.0, 0.0]
        for seed in seeds:
            row = next(r for r in runs[seed] if r["condition"] == name)
            values = (row["heldout_refusal_rate"], row["task_accuracy"], row["drift_mean_kl"])
            sums = [t + v for t, v in zip(sums, values, strict=True)]
            cells.append(f"{100 * values[0]:.1f}% / {100 * values[1]:.1f}% / {values[2]:.3f}")
        mean = [t / len(seeds) for t in sums]
        cells.append(f"{100 * mean[0]:.1f}% / {100 * mean[1]:.1f}% / {mean[2]:.3f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="builtin:organism")
    parser.add_argument("--output", default="experiments/results/safemoe_organism")
    parser.add_argument(
        "--seed", type=int, nargs="+", default=[0], help="one or more seeds (several: DIR/seed<N>/ + summary.md)"
    )
    parser.add_argument("--preset", choices=sorted(PRESETS), default="default", help="strong: the strong attack")
    parser.add_argument("--models", help="keep the fine-tuned models in this folder (default: not kept)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: fastest for this size)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override an ExperimentConfig field (JSON value), e.g. --set epochs=2 or "
        '--set conditions=[{"name": "plain", "lora_targets": "attention"}]',
    )
    args = parser.parse_args(argv)
    overrides = dict(PRESETS[args.preset])
    for item in args.set:
        key, _, value = item.partition("=")
        if key in ("model", "seed", "threads"):
            sys.exit(f"set {key} with --{key}, not --set")
        if key not in ExperimentConfig.__dataclass_fields__:
            sys.exit(f"unknown setting {key!r}")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key] = value
    if "conditions" in overrides:
        overrides["conditions"] = [c if isinstance(c, Condition) else Condition(**c) for c in overrides["conditions"]]
    output = Path(args.output)
    runs = {}
    for seed in args.seed:
        config = ExperimentConfig(model=args.model, seed=seed, threads=args.threads, **overrides)
        suffix = f"seed{seed}" if len(args.seed) > 1 else ""
        models = Path(args.models) / suffix if args.models else None
        runs[seed] = run(config, output / suffix, models)
        print(markdown_table(runs[seed], config))
    if len(runs) > 1:
        summary = seed_summary(runs)
        write_text_atomic(output / "summary.md", summary)
        print(summary)


if __name__ == "__main__":
    main()
