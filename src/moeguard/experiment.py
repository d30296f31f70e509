"""One steering experiment: detect behaviour-linked experts, steer them, compare against random controls.

A :class:`Behaviour` says what to detect (a pair set), which specs to select from the detection (arms,
e.g. "unsafe steering" = deactivate the 8 most refusal-linked experts), which prompt sets to generate on and
how to judge the generations (a judge takes the texts, or, as a :class:`PromptJudge`, the prompts and the texts).
:func:`run_experiment` runs every behaviour on one model: detection, selection,
then greedy generation under the baseline, every arm and a random control of one arm's per-layer size
over several seeds (mean ± sd), judged by every judge. ``moeguard demo``, ``moeguard organism eval`` and the
organism's model card all run this function, and render its scores with :func:`table_grid`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from moeguard.adapters import MoEModel
from moeguard.chat import Prompt
from moeguard.detect import DetectionResult
from moeguard.detect_run import Selection
from moeguard.eval.conditions import ConditionScore, Judge, score_conditions
from moeguard.routing.shape import MoEShape
from moeguard.steer import SteeringSpec

if TYPE_CHECKING:
    from moeguard.backends.base import BackendModel


class PromptJudge:
    """A judge that needs the prompts too: ``rate(prompts, texts) -> float`` (e.g. "on topic", "range right").

    Wrap a function: ``PromptJudge(lambda prompts, texts: ...)``; :func:`run_experiment` binds it to each prompt
    set before scoring, so it can stand wherever a plain ``texts -> float`` judge does."""

    def __init__(self, rate: Callable[[Sequence[Prompt], Sequence[str]], float]):
        self.rate = rate

    def bind(self, prompts: Sequence[Prompt]) -> Judge:
        """The plain judge of one prompt set (texts in the order of ``prompts``)."""
        return lambda texts: self.rate(prompts, texts)


def _bound(judges: Mapping[str, Judge | PromptJudge], prompts: Sequence[Prompt]) -> dict[str, Judge]:
    return {name: j.bind(prompts) if isinstance(j, PromptJudge) else j for name, j in judges.items()}


def score_sets(model, tokenizer, prompt_sets, conditions, judges, settings, progress=False):
    """``score_conditions`` with prompt-aware judges bound per prompt set; scores in condition-major order."""
    scores: list[ConditionScore] = []
    generations: dict[str, dict[str, list[str]]] = {}
    for name, prompts in prompt_sets.items():
        set_scores, set_generations = score_conditions(
            model,
            tokenizer,
            {name: prompts},
            conditions,
            _bound(judges, prompts),
            max_new_tokens=settings.max_new_tokens,
            batch_size=settings.batch_size,
            progress=progress,
        )
        scores += set_scores
        for condition, by_set in set_generations.items():
            generations.setdefault(condition, {}).update(by_set)
    order = {c: i for i, c in enumerate(conditions)}
    sets = {n: i for i, n in enumerate(prompt_sets)}
    scores.sort(key=lambda s: (order[s.condition], sets[s.prompt_set]))
    return scores, generations


#: SteerMoE's published OLMoE-1B-7B settings as shares of all 16 x 64 routed experts.
PAPER_TOTAL_EXPERTS = 1024
PAPER_SAFE_ACTIVATE, PAPER_UNSAFE_ACTIVATE, PAPER_UNSAFE_DEACTIVATE = 5, 10, 125
BASELINE, CONTROL = "baseline", "random control"


def paper_scaled(count: int, moe: MoEShape) -> int:
    """A published expert count scaled to this model's number of routed experts (at least 1)."""
    return max(1, round(count * len(moe.layers) * moe.num_experts / PAPER_TOTAL_EXPERTS))


@dataclass(frozen=True)
class Arm:
    """A steering condition selected from the behaviour's detection result."""

    name: str
    selection: Selection


@dataclass
class Behaviour:
    """What one part of the experiment detects, steers and measures (see the module docstring)."""

    name: str
    title: str
    pairs: str
    arms: list[Arm]
    control_of: str
    prompt_sets: dict[str, Sequence[Prompt]]
    judges: Mapping[str, Judge | PromptJudge]
    bootstrap: int = 0
    #: Prompt sets generated without steering only (e.g. benign prompts for the baseline's answer rate).
    baseline_sets: dict[str, Sequence[Prompt]] = field(default_factory=dict)


@dataclass
class ExperimentSettings:
    """How the experiment runs (the demo's defaults)."""

    pairs: int = 200
    control_seeds: int = 5
    seed: int = 0
    max_new_tokens: int = 40
    batch_size: int = 40


@dataclass
class BehaviourResult:
    """Detection, selected specs, controls, scores and generations of one behaviour."""

    behaviour: Behaviour
    detection: DetectionResult
    specs: dict[str, SteeringSpec]
    controls: list[SteeringSpec]
    scores: list[ConditionScore]
    baseline_scores: list[ConditionScore]
    generations: dict[str, dict[str, list[str]]]

    def score(self, condition: str, prompt_set: str, metric: str) -> ConditionScore:
        """The score of one cell (one-line KeyError naming the missing cell)."""
        for score in self.scores + self.baseline_scores:
            if (score.condition, score.prompt_set, score.metric) == (condition, prompt_set, metric):
                return score
        raise KeyError(f"no score for ({condition!r}, {prompt_set!r}, {metric!r})")

    def to_dict(self) -> dict:
        """Plain data (``metrics.json``): scores, specs and the first generations of every condition."""

        def rows(scores):
            return [
                {
                    "condition": s.condition,
                    "prompt_set": s.prompt_set,
                    "metric": s.metric,
                    "mean": s.mean,
                    "sd": s.sd,
                    "runs": s.runs,
                    "prompts": s.n_prompts,
                    "experts": s.experts,
                }
                for s in scores
            ]

        return {
            "title": self.behaviour.title,
            "pairs": self.behaviour.pairs,
            "detected_pairs": self.detection.pairs,
            "data_sha256": self.detection.data_sha256,
            "specs": {name: spec.to_dict() for name, spec in self.specs.items()},
            "scores": rows(self.scores),
            "baseline_scores": rows(self.baseline_scores),
            "examples": {c: {s: texts[:3] for s, texts in sets.items()} for c, sets in self.generations.items()},
        }


def run_experiment(
    moe: MoEShape,
    tokenizer,
    behaviours: Sequence[Behaviour],
    settings: ExperimentSettings | None = None,
    model_name: str | None = None,
    progress: bool = False,
    on_phase: Callable[[str], None] | None = None,
    engine: BackendModel | None = None,
) -> list[BehaviourResult]:
    """Run every behaviour on ``moe`` (see the module docstring); ``engine`` (a model loaded in another
    backend, e.g. vLLM, whose shape is ``moe``) runs detection and generation instead of ``moe``'s model."""
    from moeguard.data import read_pairs

    settings = settings or ExperimentSettings()
    engine = _engine(moe, tokenizer, engine, model_name)
    results = []
    for behaviour in behaviours:
        for arm in behaviour.arms:
            arm.selection.check(behaviour.bootstrap)
        if on_phase is not None:
            on_phase(f"{behaviour.name}: detecting experts on {behaviour.pairs}")
        pairs = read_pairs(behaviour.pairs, max_pairs=settings.pairs, seed=settings.seed)
        detection = engine.detect(pairs, bootstrap=behaviour.bootstrap, seed=settings.seed, progress=progress)
        specs = {}
        for arm in behaviour.arms:
            s = arm.selection
            specs[arm.name] = detection.select(
                s.n_activate,
                s.n_deactivate,
                reverse=s.reverse,
                min_stability=s.min_stability,
                max_q=s.max_q,
                test=s.test,
            )
        controls = [specs[behaviour.control_of].random_like(moe, seed) for seed in range(settings.control_seeds)]
        conditions: dict[str, SteeringSpec | None | list[SteeringSpec]] = {BASELINE: None, **specs, CONTROL: controls}
        if on_phase is not None:
            on_phase(f"{behaviour.name}: generating under {len(conditions)} conditions")
        scores, generations = score_sets(
            engine, tokenizer, behaviour.prompt_sets, conditions, behaviour.judges, settings, progress
        )
        baseline_scores: list[ConditionScore] = []
        if behaviour.baseline_sets:
            baseline_scores, extra = score_sets(
                engine, tokenizer, behaviour.baseline_sets, {BASELINE: None}, behaviour.judges, settings, progress
            )
            generations[BASELINE].update(extra[BASELINE])
        results.append(BehaviourResult(behaviour, detection, specs, controls, scores, baseline_scores, generations))
    return results


def _engine(moe: MoEShape, tokenizer, engine: BackendModel | None, model_name: str | None) -> BackendModel:
    """The engine that runs detection and generation: ``engine``, or ``moe``'s transformers model in the
    ``hf`` backend."""
    if engine is not None:
        return engine
    if not isinstance(moe, MoEModel):
        raise TypeError("run_experiment needs a transformers MoEModel or an engine that runs the model")
    from moeguard.backends.hf import HfModel

    return HfModel(model_name or "", model=moe.model, tokenizer=tokenizer, shape=moe)


# ---------------------------------------------------------------------------------------- tables
def table_grid(scores: Sequence[ConditionScore]) -> tuple[list[str], list[tuple[str, int, list[str]]]]:
    """Columns (metric: prompt set) and rows (condition, experts steered, cells in % with ± sd; "–" when a
    condition was not run on a column's prompt set)."""
    columns = list(dict.fromkeys(s.column for s in scores))
    cell = {(s.condition, s.column): s for s in scores}
    rows = []
    for condition in dict.fromkeys(s.condition for s in scores):
        present = [cell[(condition, c)] for c in columns if (condition, c) in cell]
        rows.append(
            (
                condition,
                present[0].experts,
                [cell[(condition, c)].cell() if (condition, c) in cell else "–" for c in columns],
            )
        )
    return columns, rows


def markdown_table(scores: Sequence[ConditionScore]) -> str:
    """Conditions as rows, (metric: prompt set) as columns, in percent (± sd for the control)."""
    columns, rows = table_grid(scores)
    lines = [
        f"| condition | experts | {' | '.join(f'{c} (%)' for c in columns)} |",
        "|---|---:|" + "---:|" * len(columns),
    ]
    lines += [f"| {condition} | {experts} | {' | '.join(cells)} |" for condition, experts, cells in rows]
    return "\n".join(lines)


def rich_table(title: str, scores: Sequence[ConditionScore]):
    """The same grid as a rich Table (terminal output)."""
    from rich.table import Table

    columns, rows = table_grid(scores)
    table = Table(title=title)
    table.add_column("condition")
    table.add_column("experts", justify="right")
    for column in columns:
        table.add_column(column, justify="right")
    for condition, experts, cells in rows:
        table.add_row(condition, str(experts), *cells)
    return table
