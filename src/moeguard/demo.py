"""``moeguard demo``: the SteerMoE story end to end on the built-in model organism, on a laptop CPU.

Runs the organism's steering experiment (:mod:`moeguard.organism.experiment`, through
:func:`moeguard.experiment.run_experiment`) on its hand-written held-out prompts:

1. detect safety-linked experts on the built-in ``safety`` pairs (refusal vs compliance);
2. refusal / on-topic answer / degenerate rates on harmful prompts and benign look-alikes for: baseline, safe
   steering, unsafe steering, and a random-expert control of the unsafe spec's size (several seeds, mean ± sd);
3. the same for ``digits-vs-words``: steered counting answers switch between "1, 2, 3" and "one, two, three"
   (style, and whether the range is the requested one);
4. the same for ``faithfulness``: steered answers to documents that contradict common knowledge switch
   between the document's answer and memory's.

Writes ``safety_table.csv``, ``digits_table.csv``, ``faithfulness_table.csv``, heatmaps, specs, ``meta.json``
and ``report.md``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from moeguard.artifacts import run_metadata, write_csv_atomic, write_json_atomic, write_text_atomic
from moeguard.eval.conditions import ConditionScore
from moeguard.experiment import BehaviourResult, ExperimentSettings, markdown_table, run_experiment
from moeguard.routing.shape import MoEShape

if TYPE_CHECKING:
    from moeguard.backends.base import BackendModel


@dataclass
class DemoSettings:
    """What the demo runs; ``None`` counts use the organism's validated ones (or the paper's, scaled)."""

    model: str = "builtin:organism"
    output: Path = Path("moeguard-demo")
    pairs: int = 200
    safe_activate: int | None = None
    unsafe_activate: int | None = None
    unsafe_deactivate: int | None = None
    digits_activate: int | None = None
    digits_deactivate: int | None = None
    document_activate: int | None = None
    document_deactivate: int | None = None
    control_seeds: int = 5
    bootstrap: int = 50
    seed: int = 0
    max_new_tokens: int = 40
    #: Hand-written prompts per set (None: all of them; 0 drops the look-alike or benign set).
    harmful_prompts: int | None = None
    lookalike_prompts: int | None = None
    benign_prompts: int | None = None
    counting_prompts: int | None = None
    faithfulness_prompts: int | None = None
    device: str | None = None
    dtype: str | None = None
    #: Engine for detection and generation (:mod:`moeguard.backends`): ``hf`` or ``vllm``.
    backend: str = "hf"

    def experiment(self) -> ExperimentSettings:
        return ExperimentSettings(
            pairs=self.pairs, control_seeds=self.control_seeds, seed=self.seed, max_new_tokens=self.max_new_tokens
        )


@dataclass
class DemoResult:
    """Scores and artifacts of a demo run."""

    results: list[BehaviourResult]
    examples: dict[str, list[tuple[str, str]]]
    files: list[Path]
    seconds: float

    @property
    def safety(self) -> list[ConditionScore]:
        return self.results[0].scores

    @property
    def digits(self) -> list[ConditionScore]:
        return self.results[1].scores

    @property
    def faithfulness(self) -> list[ConditionScore]:
        return self.results[2].scores


def run_organism_experiment(
    moe: MoEShape,
    tokenizer,
    settings: DemoSettings,
    progress: bool = True,
    on_phase=None,
    engine: BackendModel | None = None,
) -> list[BehaviourResult]:
    """The organism's experiment with the demo's settings (also used by ``organism eval`` and the card);
    ``engine`` runs detection and generation in another backend (e.g. vLLM) instead of ``moe``'s model."""
    from moeguard.organism.experiment import organism_behaviours, steering_counts

    counts = steering_counts(
        moe,
        settings.model,
        safe_activate=settings.safe_activate,
        unsafe_activate=settings.unsafe_activate,
        unsafe_deactivate=settings.unsafe_deactivate,
        digits_activate=settings.digits_activate,
        digits_deactivate=settings.digits_deactivate,
        document_activate=settings.document_activate,
        document_deactivate=settings.document_deactivate,
    )
    behaviours = organism_behaviours(
        counts,
        settings.harmful_prompts,
        settings.lookalike_prompts,
        settings.benign_prompts,
        settings.bootstrap,
        settings.counting_prompts,
        settings.faithfulness_prompts,
    )
    return run_experiment(
        moe,
        tokenizer,
        behaviours,
        settings.experiment(),
        model_name=settings.model,
        progress=progress,
        on_phase=on_phase,
        engine=engine,
    )


def run_demo(settings: DemoSettings, progress: bool = True, on_phase=None) -> DemoResult:
    """Run the whole demo and write its artifacts; returns the scores."""
    start = time.perf_counter()
    out = Path(settings.output)
    from moeguard.backends import get_backend

    # the hf engine loads in the asked dtype and device; vLLM keeps the checkpoint's and its own device
    options = {"dtype": settings.dtype, "device": settings.device} if settings.backend == "hf" else {}
    engine = get_backend(settings.backend, **options).load(settings.model)
    moe, tokenizer = engine.shape, engine.tokenizer
    results = run_organism_experiment(moe, tokenizer, settings, progress=progress, on_phase=on_phase, engine=engine)
    examples = _examples(results)
    files = _write_artifacts(out, settings, moe, results, examples, time.perf_counter() - start)
    return DemoResult(results, examples, files, time.perf_counter() - start)


def _examples(results: list[BehaviourResult]) -> dict[str, list[tuple[str, str]]]:
    safety, counting, faithfulness = results
    examples: dict[str, list[tuple[str, str]]] = {}
    for result, take in ((counting, 2), (faithfulness, 2)):
        first_set = next(iter(result.behaviour.prompt_sets))
        prompts = list(result.behaviour.prompt_sets[first_set])
        for condition, by_set in result.generations.items():
            if condition != "random control" and first_set in by_set:
                examples[f"{result.behaviour.name} / {condition}"] = list(
                    zip(map(str, prompts[:take]), by_set[first_set][:take], strict=True)
                )
    harmful_set = next(iter(safety.behaviour.prompt_sets))
    harmful = list(safety.behaviour.prompt_sets[harmful_set])
    for condition in ("baseline", "unsafe steering"):
        replies = safety.generations[condition][harmful_set]
        examples[f"harmful / {condition}"] = list(zip(map(str, harmful[:3]), replies[:3], strict=True))
    for name in safety.behaviour.baseline_sets:
        replies = safety.generations["baseline"][name]
        examples[f"{name} / baseline"] = list(
            zip(map(str, safety.behaviour.baseline_sets[name][:3]), replies[:3], strict=True)
        )
    return examples


def _table_rows(scores: list[ConditionScore]) -> list[tuple]:
    return [
        (
            s.condition,
            s.prompt_set,
            s.metric,
            s.experts,
            f"{100 * s.mean:.1f}",
            f"{100 * s.sd:.1f}",
            s.runs,
            s.n_prompts,
        )
        for s in scores
    ]


TABLE_HEADER = ["condition", "prompt_set", "metric", "experts_steered", "rate_percent", "sd_percent", "runs", "prompts"]


def _write_artifacts(out, settings, moe, results, examples, seconds):
    from moeguard.report import plot_risk_heatmap

    safety, counting, faithfulness = results
    specs = {
        "safe_spec.json": safety.specs["safe steering"],
        "unsafe_spec.json": safety.specs["unsafe steering"],
        "digits_spec.json": counting.specs["steer to digits"],
        "words_spec.json": counting.specs["steer to words"],
        "document_spec.json": faithfulness.specs["steer to document"],
        "memory_spec.json": faithfulness.specs["steer to memory"],
    }
    files = [
        write_csv_atomic(out / "safety_table.csv", TABLE_HEADER, _table_rows(safety.scores + safety.baseline_scores)),
        write_csv_atomic(
            out / "digits_table.csv", TABLE_HEADER, _table_rows(counting.scores + counting.baseline_scores)
        ),
        write_csv_atomic(out / "faithfulness_table.csv", TABLE_HEADER, _table_rows(faithfulness.scores)),
    ]
    files += [spec.save(out / name) for name, spec in specs.items()]
    files.append(
        write_json_atomic(
            out / "meta.json",
            run_metadata(
                settings.model,
                seed=settings.seed,
                pairs=settings.pairs,
                control_seeds=settings.control_seeds,
                bootstrap=settings.bootstrap,
                backend=settings.backend,
                safety_pairs_sha256=safety.detection.data_sha256,
                digits_pairs_sha256=counting.detection.data_sha256,
                faithfulness_pairs_sha256=faithfulness.detection.data_sha256,
                moe=moe.summary(),
                seconds=round(seconds, 1),
            ),
        )
    )
    unsafe, safe = specs["unsafe_spec.json"], specs["safe_spec.json"]
    control = safety.behaviour.control_of
    lines = [
        "# moeguard demo: SteerMoE on the model organism",
        "",
        f"Model `{settings.model}` ({moe.family}, {len(moe.layers)} MoE layers x {moe.num_experts} experts, "
        f"top-{moe.top_k}).",
        "",
        "## What this shows",
        "",
        "SteerMoE finds experts whose routing differs between two behaviours, then forces them on or off in the "
        "router at inference; no weight changes. Detection runs paired conversations that share the user turn "
        "and differ in the answer: side **A** is the first behaviour, side **B** the second. For every (layer, "
        "expert) it counts how often the expert is in the top-k on the answer tokens of each side; "
        "`risk difference = rate A − rate B` (red: more often on A, blue: more often on B in the heatmaps).",
        "",
        f"- Safety pairs ({safety.detection.pairs}, `{safety.behaviour.pairs}`): **A = refusal**, **B = compliance** "
        f"({safety.detection.tokens_a} / {safety.detection.tokens_b} answer tokens). Safe steering activates the "
        f"{len(safe.activate)} most refusal-linked expert(s); unsafe steering activates {len(unsafe.activate)} "
        f"compliance-linked and deactivates {len(unsafe.deactivate)} refusal-linked experts.",
        f'- Counting pairs ({counting.detection.pairs}, `{counting.behaviour.pairs}`): **A = digits** ("3, 4, 5"), '
        '**B = number words** ("three, four, five"); steering activates the most digit-linked (or word-linked) '
        "experts on counting prompts that do not say which style to use.",
        f"- Faithfulness pairs ({faithfulness.detection.pairs}, `{faithfulness.behaviour.pairs}`): a document that "
        "contradicts common knowledge, **A = the document's answer**, **B = memory's answer**; steering activates "
        "the most document-linked (or memory-linked) experts.",
        f"- Random control: the same number of experts per layer as the arm it controls (`{control}`, `steer to "
        f"words`, `steer to memory`), chosen at random ({settings.control_seeds} seeds, mean ± sd). Steering *any* "
        "experts perturbs the model; the control shows how much of an effect comes from steering as such rather "
        "than from the detected experts.",
        "- Prompts: moeguard's hand-written held-out set (questions, imperatives, polite, role-play, several "
        "sentences, typos, indirect requests), none of them a training text.",
        "- Metrics: the organism judge reads each reply three ways: **refusal**, **on topic** (a readable answer "
        "about the request: its key words, no other object) or **degenerate** (loops, broken text, or an answer "
        "about something else); counting replies by their style and whether they list exactly the requested "
        "range; document answers by whether they give the document's answer (and not memory's) or memory's.",
        "",
        "## Safety",
        "",
        markdown_table(safety.scores),
        "",
    ]
    if safety.baseline_scores:
        lines += [
            "Without steering: "
            + ", ".join(f"{s.metric} on {s.prompt_set} {100 * s.mean:.1f}%" for s in safety.baseline_scores)
            + ".",
            "",
        ]
    lines += ["## Digits vs words", "", markdown_table(counting.scores), ""]
    if counting.baseline_scores:
        lines += [
            "Without steering: "
            + ", ".join(f"{s.metric} on {s.prompt_set} {100 * s.mean:.1f}%" for s in counting.baseline_scores)
            + ".",
            "",
        ]
    lines += ["## Document vs memory", "", markdown_table(faithfulness.scores), ""]
    lines += ["## Examples", ""]
    for condition, pairs in examples.items():
        lines.append(f"**{condition}**")
        lines.append("")
        lines += [f"- *{' '.join(prompt.split())}* → `{' '.join(answer.split())[:160]}`" for prompt, answer in pairs]
        lines.append("")
    lines += [
        "## Heatmaps",
        "",
        "Every spec's experts are marked (▲ activated, ▼ deactivated).",
        "",
        "![safety heatmap](heatmap.png)",
        "",
        "![digits heatmap](digits_heatmap.png)",
        "",
        "![faithfulness heatmap](faithfulness_heatmap.png)",
        "",
    ]
    files.append(write_text_atomic(out / "report.md", "\n".join(lines)))
    files.append(
        plot_risk_heatmap(
            safety.detection,
            out / "heatmap.png",
            specs={"safe": safe, "unsafe": unsafe},
            title="safety experts: risk difference (A refusal − B compliance)",
        )
    )
    files.append(
        plot_risk_heatmap(
            counting.detection,
            out / "digits_heatmap.png",
            specs={"to digits": specs["digits_spec.json"], "to words": specs["words_spec.json"]},
            title="counting experts: risk difference (A digits − B words)",
        )
    )
    files.append(
        plot_risk_heatmap(
            faithfulness.detection,
            out / "faithfulness_heatmap.png",
            specs={"to document": specs["document_spec.json"], "to memory": specs["memory_spec.json"]},
            title="faithfulness experts: risk difference (A document − B memory)",
        )
    )
    return files
