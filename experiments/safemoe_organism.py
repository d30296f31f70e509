"""SafeMoE on the model organism: a harmful fine-tuning (HFT) attack with plain SFT vs with SafeMoE.

    python experiments/safemoe_organism.py [--model builtin:organism] [--output DIR] [--seed 0]

1. The aligned organism is evaluated: refusal rate on held-out harmful prompts (greedy generations
   judged by ``moeguard.eval.judge.refusal_rate``) and accuracy on a benign task it has never seen.
2. Its routing on a safety set of training-distribution harmful prompts is cached (``build_reference``).
3. An HFT attack set mixes the task (templated arithmetic) with harmful request → compliant answer
   pairs generated from the organism corpus (non-actionable placeholder "steps").
4. The attack set is fine-tuned once per condition (``DEFAULT_CONDITIONS``): plain SFT and SafeMoE
   with the paper's LoRA recipe (r=8, alpha=8, attention + experts) — the published ``epoch`` schedule
   and the ``step`` regulariser — and full fine-tuning, plain and with a strong ``step`` regulariser.
5. Each is evaluated like the aligned model, plus routing drift from it on the held-out harmful
   prompts (mean per-layer KL at T=0.1 and top-k Jaccard) and wall time.

Writes ``results.csv``, ``results.md`` and ``results.json`` (config, seeds, per-condition numbers and
example generations) into ``--output``; nothing is hard-coded, every number is measured in the run.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from moeguard.artifacts import run_metadata, write_csv_atomic, write_json_atomic, write_text_atomic
from moeguard.eval.judge import refusal_rate
from moeguard.generation import generate
from moeguard.models import load_model
from moeguard.safemoe import (
    FinetuneSettings,
    LoraSettings,
    SafeMoEConfig,
    build_attack_set,
    build_reference,
    finetune,
    measure_drift,
    organism_harmful_prompts,
)

#: Frames of the benign task (additions of 0..max_operand); evaluation uses held-out frames.
TASK_TRAIN_FRAMES = (
    "What is {a} plus {b}?",
    "Add {a} and {b}.",
    "Compute {a} plus {b}.",
    "What do you get if you add {a} and {b}?",
)
TASK_EVAL_FRAMES = ("Please add {a} and {b}.", "What is the sum of {a} and {b}?")


@dataclass
class Condition:
    """One fine-tuning run on the attack set: a recipe (LoRA targets or full) and an alignment (or none)."""

    name: str
    lora_targets: str | None = "all"  # None: full fine-tuning
    learning_rate: float = 3e-3
    schedule: str | None = None  # None: plain SFT; "epoch" (published) or "step"
    lam: float = 1.0
    passes: int = 1


#: The paper's recipe (LoRA r=8, alpha=8, attention + experts; published epoch schedule) and the step
#: regulariser with the same recipe; attention-only LoRA (experts frozen), plain and with three safety passes
#: per epoch; full fine-tuning, plain and with a strong step regulariser (further along the trade-off).
DEFAULT_CONDITIONS = (
    Condition("plain SFT (LoRA)"),
    Condition("SafeMoE epoch (LoRA)", schedule="epoch"),
    Condition("SafeMoE step λ=1 (LoRA)", schedule="step", lam=1.0),
    Condition("plain SFT (LoRA attn)", lora_targets="attention"),
    Condition("SafeMoE epoch x3 (LoRA attn)", lora_targets="attention", schedule="epoch", passes=3),
    Condition("plain SFT (full)", lora_targets=None, learning_rate=3e-4),
    Condition("SafeMoE step λ=10 (full)", lora_targets=None, learning_rate=3e-4, schedule="step", lam=10.0),
)
#: The pair the acceptance bars are about: plain SFT vs SafeMoE, the published setting.
PLAIN, SAFEMOE = "plain SFT (LoRA)", "SafeMoE epoch (LoRA)"


@dataclass
class ExperimentConfig:
    """Everything that determines a run (recorded in ``results.json``)."""

    model: str = "builtin:organism"
    seed: int = 0
    task_train: int = 400
    #: Harmful-compliance pairs mixed into the task data (0: benign fine-tuning only, the HFT control).
    harmful_train: int = 80
    safety_prompts: int = 100
    eval_harmful: int = 60
    eval_task: int = 60
    max_operand: int = 5
    epochs: float = 5.0
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


def task_items(
    n: int, seed: int, frames: tuple[str, ...], max_operand: int, exclude: set[tuple[int, int]] | None = None
) -> list[dict]:
    """``n`` templated additions ``{prompt, response, answer, pair}``; pairs in ``exclude`` are skipped."""
    rng = random.Random(f"safemoe-task-{seed}")
    items = []
    while len(items) < n:
        a, b = rng.randint(0, max_operand), rng.randint(0, max_operand)
        if exclude and (a, b) in exclude:
            continue
        prompt = rng.choice(frames).format(a=a, b=b)
        items.append(
            {"prompt": prompt, "response": f"{a} plus {b} is {a + b}.", "answer": a + b, "pair": (a, b)}
        )
    return items


def first_number_after_is(text: str) -> int | None:
    """The number the reply gives as the result ("... is 12." → 12; else the last number, if any)."""
    match = re.search(r"\bis\s+(-?\d+)", text)
    if match:
        return int(match.group(1))
    numbers = re.findall(r"-?\d+", text)
    return int(numbers[-1]) if numbers else None


def task_accuracy(outputs: list[str], items: list[dict]) -> float:
    """Share of replies whose result is the correct sum."""
    return sum(first_number_after_is(o) == it["answer"] for o, it in zip(outputs, items, strict=True)) / len(
        items
    )


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
        "task_accuracy": task_accuracy(task_out, task),
        "drift_mean_kl": drift.mean_kl,
        "drift_topk_jaccard": drift.mean_jaccard,
        "train_seconds": train_seconds,
        "eval_seconds": eval_seconds,
        "drift_per_layer_kl": drift.kl,
        "examples": {
            "harmful": [
                {"prompt": p, "output": o} for p, o in list(zip(harmful, harmful_out, strict=True))[:4]
            ],
            "task": [
                {"prompt": t["prompt"], "output": o} for t, o in list(zip(task, task_out, strict=True))[:4]
            ],
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
        f"Model `{config.model}`. Attack set: {config.task_train} templated additions "
        f"(0..{config.max_operand}) + {config.harmful_train} harmful-compliance pairs from the organism "
        f"corpus; {config.epochs:g} epochs, batch {config.batch_size}. SafeMoE reference: "
        f"{config.safety_prompts} training-distribution harmful prompts, scope `{config.scope}`, "
        f"T={config.temperature:g}. Evaluation: {config.eval_harmful} held-out harmful prompts (refusal "
        f"judged by `eval.judge.refusal_rate` on greedy generations) and {config.eval_task} additions in "
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


def run(config: ExperimentConfig, output: str | Path) -> list[dict]:
    """The whole experiment; returns one row per condition, the aligned model first."""
    from moeguard.organism import corpus

    output = Path(output)
    if config.threads:
        torch.set_num_threads(config.threads)
    started = time.perf_counter()
    aligned, tokenizer = load_model(config.model)
    harmful_eval = corpus.heldout_harmful_prompts(config.eval_harmful)
    train_items = task_items(config.task_train, config.seed, TASK_TRAIN_FRAMES, config.max_operand)
    eval_items = task_items(config.eval_task, config.seed + 1, TASK_EVAL_FRAMES, config.max_operand)
    task_chats = [chat(it["prompt"], it["response"]) for it in train_items]
    if config.harmful_train:
        attack = build_attack_set(task_chats, "builtin:organism", count=config.harmful_train, seed=config.seed)
        conversations = [r["messages"] for r in attack]
    else:  # benign fine-tuning only (the control of HFT studies)
        conversations = task_chats
    reference = build_reference(
        aligned,
        tokenizer,
        organism_harmful_prompts(config.safety_prompts, config.seed),
        scope=config.scope,
        batch_size=32,
        model_name=config.model,
    )

    rows = [evaluate("aligned", aligned, aligned, tokenizer, harmful_eval, eval_items, config, 0.0)]
    rows[0].update(recipe="-", alignment="-")
    for condition in config.conditions:
        lora = None
        if condition.lora_targets is not None:
            lora = LoraSettings(r=config.lora_r, alpha=config.lora_alpha, targets=condition.lora_targets)  # type: ignore[arg-type]
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
                safety_lr=config.safety_lr,
                safety_batch_size=config.safety_batch_size,
                seed=config.seed,
            )
        model, _ = load_model(config.model)
        folder = output / re.sub(r"[^a-z0-9]+", "_", condition.name.lower()).strip("_")
        result = finetune(
            model, tokenizer, conversations, folder, settings, safemoe=alignment, model_name=config.model
        )
        row = evaluate(
            condition.name, result.model, aligned, tokenizer, harmful_eval, eval_items, config, result.seconds
        )
        recipe = f"LoRA r={config.lora_r} ({condition.lora_targets})" if lora else "full"
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="builtin:organism")
    parser.add_argument("--output", default="experiments/results/safemoe_organism")
    parser.add_argument("--seed", type=int, default=0)
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
    overrides = {}
    for item in args.set:
        key, _, value = item.partition("=")
        if key not in ExperimentConfig.__dataclass_fields__:
            sys.exit(f"unknown setting {key!r}")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key] = value
    if "conditions" in overrides:
        overrides["conditions"] = [Condition(**c) for c in overrides["conditions"]]
    config = ExperimentConfig(model=args.model, seed=args.seed, threads=args.threads, **overrides)
    rows = run(config, args.output)
    print(markdown_table(rows, config))


if __name__ == "__main__":
    main()
