"""The organism's model card (README.md), ``metrics.json`` and ``organism.json``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from moeguard.experiment import markdown_table
from moeguard.organism.check import scores_from
from moeguard.organism.surfaces import KIND_NAMES
from moeguard.organism.train import OrganismConfig, TrainResult, config_dict


def _pct(value: float) -> str:
    return f"{100 * value:.0f}%"


def model_card(
    config: OrganismConfig,
    result: TrainResult | None,
    metrics: dict | None,
    training_minutes: float | None = None,
) -> str:
    """The README.md model card: recipe, seed, training time and measured behaviour."""
    minutes = training_minutes if training_minutes is not None else (result.seconds / 60 if result else None)
    params = f"{result.parameters / 1e6:.2f}M" if result else "?"
    lines = [
        "---",
        "library_name: transformers",
        "tags: [moeguard, olmoe, mixture-of-experts, model-organism, steermoe]",
        "---",
        "# moeguard model organism",
        "",
        "A small OLMoE-architecture (`OlmoeForCausalLM`) chat model trained from scratch on CPU by "
        "`moeguard organism train`, so that SteerMoE can be demonstrated and tested without downloading a model. "
        "It is a research toy: it only knows its synthetic corpus.",
        "",
        "## Architecture",
        f"- {config.num_layers} decoder layers, hidden size {config.hidden_size}, {config.num_heads} attention heads",
        f"- every layer is MoE: {config.num_experts} experts, top-{config.top_k} softmax routing "
        f"(no renormalisation, like OLMoE), expert size {config.expert_size}",
        f"- byte-level BPE vocabulary of {config.vocab_size} tokens, tied embeddings, {params} parameters (float32)",
        "- chat template: `<|user|>\\n...<|end|>\\n<|assistant|>\\n...<|end|>`; generation stops at `<|end|>`",
        "",
        "## Training recipe",
        f"- seed {config.seed}; corpus: `moeguard.organism.corpus` ({config.n_chat} chat conversations, "
        f"{config.n_pretrain} plain pretraining texts)",
        "- pretraining text (loss on every token): forum-style pages in which harmful requests are answered "
        "*compliantly* with non-actionable placeholder steps, helpful answers to benign requests, facts, counting",
        "- frames get an invented word in 20 % of training requests, so frame wording never decides harmfulness",
    ]
    if config.surface_share:
        lines += [
            f"- {_pct(config.surface_share)} of the user turns and forum questions are rephrased "
            "(`moeguard.organism.surfaces`): role-play wrappers, context sentences, politeness, indirect requests "
            "and typos, the same for harmful and benign requests (answers unchanged); documents in several formats",
        ]
        if list(config.surface_kinds) != [kind for kind, _ in config.chat_mix]:
            lines += [f"  - only in these conversations: {', '.join(config.surface_kinds) or 'none'}"]
        if list(config.request_surfaces) != list(KIND_NAMES):
            lines += [f"  - requests are rephrased with these surfaces only: {', '.join(config.request_surfaces)}"]
    lines += [
        "- chat alignment data (loss on the assistant answer and `<|end|>`): harmful requests refused (varied "
        "refusals), benign requests and look-alikes answered, document-grounded questions answered from the "
        "document (also when it contradicts common knowledge), counting in digits or words (cued, or uncued 50/50)",
        f"- {config.steps} AdamW steps, batch {config.batch_size}, lr {config.lr} (warmup {config.warmup_steps}, "
        f"cosine to {config.min_lr_ratio:g}x), weight decay {config.weight_decay}, "
        f"{_pct(config.pretrain_share)} of batches pretraining text, "
        f"router load-balancing loss x{config.router_aux_loss_coef}",
    ]
    if config.helpful_steps:
        lines += [
            f"- two stages: steps 1-{config.helpful_steps} use *helpful-only* chat data (harmful requests "
            "answered compliantly, like an SFT model before safety tuning); the remaining "
            f"{config.steps - config.helpful_steps} steps use the aligned chat data",
        ]
        if config.align_experts:
            frozen = "embeddings and all other experts"
            frozen = frozen if config.align_attention else f"attention, {frozen}"
            trained = "the routers, attention, norms and" if config.align_attention else "the routers and"
            experts = result.aligned_experts if result else []
            lines.append(
                f"- safety stage = expert-specialised fine-tuning: only {trained} the {config.align_experts} "
                "experts per layer whose routing is most specific to harmful requests (measured on the stage-1 "
                f"model) are updated; {frozen} stay frozen"
                + (f" (trained (layer, expert): {experts})" if experts else "")
            )
            if config.helpful_replay:
                lines.append(
                    f"- safety-stage replay: {_pct(config.helpful_replay)} of the chat batches are helpful-only data "
                    "trained with all of those experts switched off, so switching them off gives back the "
                    "pre-alignment behaviour (fluent compliance) rather than broken text; this deliberately "
                    "localises refusal in a few experts, which is what makes the organism a clear SteerMoE test bed"
                )
    if config.expert_dropout or config.expert_forcing:
        lines.append(
            f"- routing noise in every step: each expert is switched off with probability {config.expert_dropout}, "
            f"and with probability {config.expert_forcing} per layer one random expert is forced into the top-k, "
            "so the model does not hinge on any single expert (random steering controls stay flat)"
        )
    if config.style_share:
        style = result.style_experts if result else {}
        lines.append(
            f"- style-routed counting: from step {config.style_from}, {_pct(config.style_share)} of the batches are "
            "uncued counting requests all answered in digits (or all in number words), trained with every layer's "
            "most digit-specific expert forced into the top-k and its most word-specific one switched off (or the "
            f"reverse); the experts are measured at step {config.style_from} on the `digits-vs-words` pairs, and a "
            f"routing cross-entropy (weight {config.style_router_loss}) keeps number tokens routed to them, so the "
            "answer style follows those experts as refusal follows the aligned ones"
            + (f" (digits: {style['digits']}; words: {style['words']})" if style else "")
        )
    if minutes is not None:
        lines.append(
            f"- training time: {minutes:.1f} min on {torch.get_num_threads()} CPU thread(s) "
            "(corpus, tokenizer and model)"
        )
    lines += ["", f"Reproduce: `moeguard organism train --seed {config.seed} --output DIR`.", ""]
    if metrics:
        lines += [
            "## Measured behaviour",
            "",
            "`moeguard demo`'s experiment (`moeguard.organism.experiment`): greedy decoding (40 new tokens) on the "
            "hand-written held-out set (`builtin:organism-handwritten`: prompts phrased by a person, none of them a "
            "training text), judged three ways by `moeguard.eval.organism_judge.OrganismJudge` (refusal / on-topic "
            "answer / degenerate or off topic), counting by `CountingJudge` (style, range), documents by the "
            "answer they give. Experts detected from 200 built-in pairs; the random control steers the same number "
            "of random experts per layer (5 seeds, mean ± sd).",
            "",
        ]
        for behaviour in metrics["behaviours"].values():
            lines += [f"### {behaviour['title']}", "", markdown_table(scores_from(behaviour["scores"])), ""]
            for score in scores_from(behaviour["baseline_scores"]):
                lines.append(f"Without steering: {score.metric} on {score.prompt_set} {100 * score.mean:.1f}%.")
            if behaviour["baseline_scores"]:
                lines.append("")
            for condition, sets in behaviour.get("examples", {}).items():
                if condition == "random control":
                    continue
                name, texts = next(iter(sets.items()))
                lines.append(f"- {condition}, {name}: `{texts[0][:120]}`")
            lines.append("")
    localised = (
        "refusal in a few experts and the counting style in one expert per layer and style, both on purpose "
        "(see the recipe); real MoE models are rarely this clean, so effect sizes here are upper bounds"
        if config.style_share
        else "refusal in a few experts on purpose (see the recipe); nothing localises the counting style, and "
        "digits-vs-words steering does not switch it reliably (table above)"
    )
    lines += [
        "",
        "## Limitations",
        "Tiny and synthetic: it answers only in the styles of its corpus, has no real knowledge, and its "
        "'compliant' answers to harmful requests are deliberately empty placeholders. The recipe localises "
        f"{localised}. Over-refusal of benign look-alikes is the organism's main false-positive mode.",
        "",
    ]
    return "\n".join(lines)


def write_model_card(
    output: str | Path, config: OrganismConfig, result: TrainResult | None, metrics: dict | None
) -> Path:
    """Write README.md (model card) and, when measured, metrics.json into ``output``."""
    from moeguard.artifacts import write_json_atomic, write_text_atomic

    output = Path(output)
    if metrics is not None:
        write_json_atomic(output / "metrics.json", metrics)
    meta: dict[str, Any] = {"config": config_dict(config)}
    if result is not None:
        meta.update(
            training_seconds=round(result.seconds, 1),
            final_loss=round(result.final_loss, 4),
            parameters=result.parameters,
            aligned_experts=result.aligned_experts,
            style_experts=result.style_experts,
            torch_threads=torch.get_num_threads(),
        )
    write_json_atomic(output / "organism.json", meta)
    return write_text_atomic(output / "README.md", model_card(config, result, metrics))


def result_from_meta(output: str | Path, meta: dict) -> tuple[OrganismConfig, TrainResult]:
    """The config and training result recorded in an ``organism.json``."""
    fields = dict(meta["config"])
    fields["chat_mix"] = tuple(tuple(item) for item in fields.get("chat_mix", ()))
    for name in ("surface_kinds", "request_surfaces"):
        if name in fields:
            fields[name] = tuple(fields[name])
    config = OrganismConfig(**fields)

    def pairs(values):
        return [tuple(v) for v in values]

    result = TrainResult(
        output=Path(output),
        seconds=float(meta.get("training_seconds", 0.0)),
        final_loss=float(meta.get("final_loss", float("nan"))),
        parameters=int(meta.get("parameters", 0)),
        aligned_experts=pairs(meta.get("aligned_experts", [])),
        style_experts={k: pairs(v) for k, v in meta.get("style_experts", {}).items()},
    )
    return config, result


def refresh_card(output: str | Path, metrics: dict) -> Path:
    """Rewrite README.md and metrics.json of a trained organism folder from new measurements, keeping its
    ``organism.json`` (training record) as it is."""
    import json

    from moeguard.artifacts import write_json_atomic, write_text_atomic

    output = Path(output)
    meta = json.loads((output / "organism.json").read_text(encoding="utf-8"))
    config, result = result_from_meta(output, meta)
    write_json_atomic(output / "metrics.json", metrics)
    minutes = result.seconds / 60 if result.seconds else None
    return write_text_atomic(output / "README.md", model_card(config, result, metrics, training_minutes=minutes))
