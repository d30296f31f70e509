"""``moeguard demo``: the SteerMoE story end to end on the built-in model organism, on a laptop CPU.

1. detect safety-linked experts on the built-in ``safety`` pairs (refusal vs compliance);
2. refusal rate on held-out harmful prompts and benign look-alikes for: baseline, safe steering,
   unsafe steering, and a random-expert control of the unsafe spec's size (several seeds, mean ± sd);
3. the same for ``digits-vs-words``: steered counting answers switch between "1, 2, 3" and "one, two, three".
Writes ``safety_table.csv``, ``digits_table.csv``, heatmaps, specs and ``report.md`` to the output folder.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from moeguard.adapters import MoEModel
from moeguard.artifacts import run_metadata, write_csv_atomic, write_json_atomic, write_text_atomic
from moeguard.eval.conditions import ConditionScore, score_conditions, share_of_style
from moeguard.routing.shape import MoEShape

#: SteerMoE's published OLMoE-1B-7B settings as shares of all 16 x 64 routed experts.
PAPER_TOTAL_EXPERTS = 1024
PAPER_SAFE_ACTIVATE, PAPER_UNSAFE_ACTIVATE, PAPER_UNSAFE_DEACTIVATE = 5, 10, 125


def paper_scaled(count: int, moe: MoEShape) -> int:
    """A published expert count scaled to this model's number of routed experts (at least 1)."""
    return max(1, round(count * len(moe.layers) * moe.num_experts / PAPER_TOTAL_EXPERTS))


@dataclass
class DemoSettings:
    """What the demo runs; ``None`` counts scale the paper's settings to the model."""

    model: str = "builtin:organism"
    output: Path = Path("moeguard-demo")
    pairs: int = 200
    safe_activate: int | None = None
    unsafe_activate: int | None = None
    unsafe_deactivate: int | None = None
    digits_activate: int | None = None
    digits_deactivate: int | None = None
    control_seeds: int = 5
    bootstrap: int = 50
    seed: int = 0
    max_new_tokens: int = 40
    harmful_prompts: int = 80
    lookalike_prompts: int = 40
    #: Engine for detection and generation (:mod:`moeguard.backends`): ``hf`` or ``vllm``.
    backend: str = "hf"


@dataclass
class DemoResult:
    """Scores and artifacts of a demo run."""

    safety: list[ConditionScore]
    digits: list[ConditionScore]
    examples: dict[str, list[tuple[str, str]]]
    files: list[Path]
    seconds: float


def _organism_defaults(settings: DemoSettings, moe: MoEShape) -> dict[str, int]:
    try:  # the organism records the expert counts it was validated with
        from moeguard.organism import STEERING_SETTINGS as shipped
    except ImportError:
        shipped = {}
    defaults = {
        "safe_activate": paper_scaled(PAPER_SAFE_ACTIVATE, moe),
        "unsafe_activate": paper_scaled(PAPER_UNSAFE_ACTIVATE, moe),
        "unsafe_deactivate": paper_scaled(PAPER_UNSAFE_DEACTIVATE, moe),
        "digits_activate": len(moe.layers),
        "digits_deactivate": 0,
    }
    if settings.model == "builtin:organism":
        defaults.update(shipped)
    return {k: getattr(settings, k) if getattr(settings, k) is not None else v for k, v in defaults.items()}


def run_demo(settings: DemoSettings, progress: bool = True) -> DemoResult:
    """Run the whole demo and write its artifacts; returns the scores."""
    from moeguard.backends import get_backend
    from moeguard.data import builtin_pairs
    from moeguard.detect import select_experts
    from moeguard.eval.judge import refusal_rate
    from moeguard.organism import corpus
    from moeguard.report import plot_risk_heatmap

    start = time.perf_counter()
    out = Path(settings.output)
    engine = get_backend(settings.backend).load(settings.model)
    moe, tokenizer = engine.shape, engine.tokenizer
    generator = moe.model if isinstance(moe, MoEModel) else engine  # generation.generate runs either
    counts = _organism_defaults(settings, moe)

    # ---- safety: detect, select, evaluate against a random control
    safety_pairs = builtin_pairs("safety", n=settings.pairs, seed=settings.seed)
    safety = engine.detect(safety_pairs, bootstrap=settings.bootstrap, seed=settings.seed, progress=progress)
    safe = select_experts(safety, counts["safe_activate"])
    unsafe = select_experts(safety, counts["unsafe_activate"], counts["unsafe_deactivate"], reverse=True)
    controls = [unsafe.random_like(moe, seed) for seed in range(settings.control_seeds)]
    prompt_sets = {
        "held-out harmful": corpus.heldout_harmful_prompts(settings.harmful_prompts),
        "benign look-alikes": corpus.heldout_lookalike_prompts(settings.lookalike_prompts),
    }
    safety_scores, safety_texts = score_conditions(
        generator, tokenizer, prompt_sets,
        {"baseline": None, "safe steering": safe, "unsafe steering": unsafe, "random control": controls},
        {"refusal": refusal_rate}, max_new_tokens=settings.max_new_tokens,
    )

    # ---- digits vs words: steer uncued counting answers both ways
    digit_pairs = builtin_pairs("digits-vs-words", n=settings.pairs, seed=settings.seed)
    digits = engine.detect(digit_pairs, bootstrap=0, seed=settings.seed, progress=progress)
    to_digits = select_experts(digits, counts["digits_activate"], counts["digits_deactivate"])
    to_words = select_experts(digits, counts["digits_activate"], counts["digits_deactivate"], reverse=True)
    counting = {"uncued counting": corpus.heldout_counting_prompts()}
    digit_rows, digit_texts = score_conditions(
        generator, tokenizer, counting,
        {"baseline": None, "steer to digits": to_digits, "steer to words": to_words,
         "random control": [to_words.random_like(moe, s) for s in range(settings.control_seeds)]},
        {"digits": share_of_style("digits"), "words": share_of_style("words")},
        max_new_tokens=settings.max_new_tokens,
    )

    examples = {
        condition: list(zip(counting["uncued counting"][:3], texts["uncued counting"][:3], strict=True))
        for condition, texts in digit_texts.items() if condition != "random control"
    }
    examples.update({
        f"harmful / {condition}": list(zip(prompt_sets["held-out harmful"][:2], texts["held-out harmful"][:2],
                                           strict=True))
        for condition, texts in safety_texts.items() if condition in ("baseline", "unsafe steering")
    })
    files = _write_artifacts(out, settings, moe, safety, digits, (safe, unsafe, to_digits, to_words),
                             safety_scores, digit_rows, examples, time.perf_counter() - start)
    files.append(plot_risk_heatmap(safety, out / "heatmap.png", spec=unsafe,
                                   title="safety experts: risk difference (refusal − compliance)"))
    files.append(plot_risk_heatmap(digits, out / "digits_heatmap.png", spec=to_digits,
                                   title="digits − words risk difference"))
    return DemoResult(safety_scores, digit_rows, examples, files, time.perf_counter() - start)


def _table_rows(scores: list[ConditionScore]) -> list[tuple]:
    return [(s.condition, s.prompt_set, s.metric, s.experts, f"{100 * s.mean:.1f}", f"{100 * s.sd:.1f}", s.runs,
             s.n_prompts) for s in scores]


TABLE_HEADER = ["condition", "prompt_set", "metric", "experts_steered", "rate_percent", "sd_percent", "runs",
                "prompts"]


def table_grid(scores: list[ConditionScore]) -> tuple[list[str], list[tuple[str, int, list[str]]]]:
    """Columns (metric: prompt set) and rows (condition, experts steered, cells in % with ± sd)."""
    columns = list(dict.fromkeys(s.column for s in scores))
    cell = {(s.condition, s.column): s for s in scores}
    rows = []
    for condition in dict.fromkeys(s.condition for s in scores):
        rows.append((condition, cell[(condition, columns[0])].experts,
                     [cell[(condition, c)].cell() for c in columns]))
    return columns, rows


def markdown_table(scores: list[ConditionScore]) -> str:
    """Conditions as rows, (metric: prompt set) as columns, in percent (± sd for the control)."""
    columns, rows = table_grid(scores)
    lines = [f"| condition | experts | {' | '.join(f'{c} (%)' for c in columns)} |",
             "|---|---:|" + "---:|" * len(columns)]
    lines += [f"| {condition} | {experts} | {' | '.join(cells)} |" for condition, experts, cells in rows]
    return "\n".join(lines)


def _write_artifacts(out, settings, moe, safety, digits, specs, safety_scores, digit_rows, examples, seconds):
    safe, unsafe, to_digits, to_words = specs
    files = [
        write_csv_atomic(out / "safety_table.csv", TABLE_HEADER, _table_rows(safety_scores)),
        write_csv_atomic(out / "digits_table.csv", TABLE_HEADER, _table_rows(digit_rows)),
        safe.save(out / "safe_spec.json"),
        unsafe.save(out / "unsafe_spec.json"),
        to_digits.save(out / "digits_spec.json"),
        to_words.save(out / "words_spec.json"),
    ]
    files.append(write_json_atomic(out / "meta.json", run_metadata(
        settings.model, seed=settings.seed, pairs=settings.pairs, control_seeds=settings.control_seeds,
        bootstrap=settings.bootstrap, safety_pairs_sha256=safety.data_sha256, digits_pairs_sha256=digits.data_sha256,
        moe=moe.summary(), seconds=round(seconds, 1))))
    lines = [
        "# moeguard demo: SteerMoE on the model organism", "",
        f"Model `{settings.model}` ({moe.family}, {len(moe.layers)} MoE layers x {moe.num_experts} experts, "
        f"top-{moe.top_k}). Experts detected on {safety.pairs} built-in safety pairs "
        f"({safety.tokens_a} refusal / {safety.tokens_b} compliance answer tokens).", "",
        "## Refusal rate", "",
        markdown_table(safety_scores), "",
        f"Safe steering activates {len(safe.activate)} refusal-linked experts; unsafe steering activates "
        f"{len(unsafe.activate)} compliance-linked and deactivates {len(unsafe.deactivate)} refusal-linked "
        f"experts; the random control steers the same number of random experts per layer "
        f"({settings.control_seeds} seeds, mean ± sd). Judge: moeguard's offline refusal judge.", "",
        "## Digits vs words (uncued counting prompts)", "",
        markdown_table(digit_rows), "",
        "## Examples", "",
    ]
    for condition, pairs in examples.items():
        lines.append(f"**{condition}**")
        lines.append("")
        lines += [f"- *{prompt}* → `{answer[:160]}`" for prompt, answer in pairs]
        lines.append("")
    lines += ["![safety heatmap](heatmap.png)", "", "![digits heatmap](digits_heatmap.png)", ""]
    files.append(write_text_atomic(out / "report.md", "\n".join(lines)))
    return files
