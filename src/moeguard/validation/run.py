"""``moeguard validate``: is a selection of experts causally special? Dose–response against matched random sets,
leave-one-out attribution and selection stability.

>>> result = run_validate(ValidateSettings(model="builtin:organism", spec="runs/demo/unsafe_spec.json",
...                                        benchmark="builtin:organism-harmful", output="runs/validate"))

* **Dose–response**: the spec's ranking (:func:`moeguard.validation.stats.ranking_of`; a detect run folder
  orders it by ``|risk_diff|`` from its ``experts.csv``) is steered at doses ``1, 2, 4, ...`` and the full size.
  ``random_sets`` matched random rankings (:func:`~moeguard.validation.stats.matched_random_ranking`, seeds
  ``seed .. seed+N-1``) are steered at the same doses, so each random set is a curve. At each dose: the metric of
  the selection with a 95% percentile bootstrap CI over prompts, the random sets' mean, sd, min and max, and the
  set-level permutation p-value (:func:`~moeguard.validation.stats.permutation_p`) in the direction of the full
  spec's effect (``direction="auto"``) or the one given.
* **Leave-one-out**: the full spec without each expert; its attribution is the effect lost
  (``metric(full) - metric(full without j)``), with a paired-bootstrap CI over prompts; the sum of attributions is
  compared with the full effect (``metric(full) - metric(baseline)``).
* **Stability** (with ``pairs``): detection on the pairs, the spec's rule re-applied on cluster resamples and on
  disjoint halves (:mod:`moeguard.validation.stability`).

The run folder: ``dose_response.csv``, ``random_sets.csv``, ``loo.csv``, ``stability.csv`` (with pairs),
``samples.jsonl`` (every generation), ``dose_response.png`` and ``validate.json`` (settings, summary, run
metadata). Every input is checked before the model loads.
"""

from __future__ import annotations

import csv
import json
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from moeguard.artifacts import run_metadata, write_csv_atomic, write_json_atomic, write_text_atomic
from moeguard.errors import MoeguardError, parameter_error
from moeguard.eval.benchmarks import BenchmarkItem, load_benchmark
from moeguard.eval.judge_choice import JudgeChoice, check_judge
from moeguard.eval.stats import bootstrap_ci, mean_sd, paired_bootstrap
from moeguard.steer import SteeringSpec
from moeguard.validation.behaviour import Behaviour, check_metric, paired, present
from moeguard.validation.stats import (
    DIRECTIONS,
    Ranked,
    auto_direction,
    beats_all,
    beats_random_from,
    doses_for,
    loo_attribution,
    loo_summary,
    matched_random_ranking,
    permutation_p,
    ranking_of,
    spec_of,
)

VALIDATE_JSON, DOSES_CSV, RANDOM_CSV, LOO_CSV, STABILITY_CSV = (
    "validate.json",
    "dose_response.csv",
    "random_sets.csv",
    "loo.csv",
    "stability.csv",
)
SAMPLES, PLOT = "samples.jsonl", "dose_response.png"


@dataclass
class ValidateSettings:
    """What ``moeguard validate`` runs (see the module docstring)."""

    model: str
    spec: Path | str
    benchmark: str
    output: Path | str
    split: str | None = None
    limit: int | None = None
    judge: str = "refusal"
    metric: str = "refusal"
    doses: Sequence[int] = ()
    random_sets: int = 19
    direction: str = "auto"
    loo: bool = True
    pairs: str | None = None
    max_pairs: int = 200
    resamples: int = 20
    splits: int = 10
    max_new_tokens: int = 40
    batch_size: int = 40
    seed: int = 0
    bootstrap: int = 1000
    overwrite: bool = False
    force: bool = False
    trust_remote_code: bool = False
    device: str | None = None
    dtype: str | None = None


@dataclass
class ValidatePlan:
    """Checked inputs."""

    settings: ValidateSettings
    output: Path
    spec: SteeringSpec
    spec_path: Path
    ranking: list[Ranked]
    ranking_source: str
    doses: list[int]
    items: list[BenchmarkItem]
    judge: JudgeChoice
    pairs: list | None
    notes: list[str] = field(default_factory=list)


def _check_numbers(s: ValidateSettings) -> None:
    for name, value, least in (
        ("random_sets", s.random_sets, 1),
        ("max_new_tokens", s.max_new_tokens, 1),
        ("batch_size", s.batch_size, 1),
        ("seed", s.seed, 0),
        ("bootstrap", s.bootstrap, 1),
        ("resamples", s.resamples, 0),
        ("splits", s.splits, 0),
        ("max_pairs", s.max_pairs, 1),
    ):
        if not isinstance(value, int) or isinstance(value, bool) or value < least:
            raise parameter_error(name, f"must be an integer >= {least}, got {value!r}")
    if s.limit is not None and s.limit < 1:
        raise parameter_error("limit", f"must be at least 1, got {s.limit}")
    if s.direction not in (*DIRECTIONS, "auto"):
        raise parameter_error("direction", f"must be 'auto', 'lower' or 'higher', got {s.direction!r}")


def check_output(path: Path | str, overwrite: bool, marker: str) -> Path:
    """A folder for a new run: empty or absent, or holding a previous run of this command with ``overwrite``."""
    from moeguard.outputs import check_output_folder

    out = check_output_folder(path)
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise MoeguardError(f"--output {out} is not empty; pass a new folder or --overwrite", param="output")
    if out.is_dir() and overwrite and any(out.iterdir()) and not (out / marker).is_file():
        raise MoeguardError(
            f"--output {out} holds files of another kind; --overwrite only replaces a run of "
            "this command, pass a new folder",
            param="output",
        )
    return out


def load_spec(path: Path | str, model: str, force: bool, flag: str = "--spec") -> tuple[SteeringSpec, Path, str | None]:
    """The spec (a file or a detect run folder), checked against ``model``; the path read; a forced-mismatch note."""
    from moeguard.eval.specs import spec_file

    given = Path(path).expanduser()
    if given.is_dir() and not (given / "spec.json").is_file():
        raise MoeguardError(f"{flag} {given} is a folder without spec.json; pass a spec file or a detect run folder")
    file = spec_file(given)
    spec = SteeringSpec.load(file)
    note = spec.check_model(model, force, source=f"{flag} {file}")
    return spec, file, note


def scores_beside(spec_path: Path) -> dict[tuple[int, int], float] | None:
    """``{(layer, expert): risk_diff}`` from the ``experts.csv`` next to a detect run's spec (None without one)."""
    table = spec_path.parent / "experts.csv"
    if spec_path.name != "spec.json" or not table.is_file():
        return None
    try:
        with open(table, newline="", encoding="utf-8") as handle:
            return {(int(r["layer"]), int(r["expert"])): float(r["risk_diff"]) for r in csv.DictReader(handle)}
    except (KeyError, ValueError, UnicodeDecodeError):
        raise MoeguardError(f"{table} is not a detect experts table; rerun 'moeguard detect'") from None


def prepare(settings: ValidateSettings) -> ValidatePlan:
    """Check every input without loading the model (one-line MoeguardError on bad input)."""
    from moeguard.data import read_pairs

    _check_numbers(settings)
    out = check_output(settings.output, settings.overwrite, VALIDATE_JSON)
    judge = check_judge(settings.judge)
    spec, spec_path, note = load_spec(settings.spec, settings.model, settings.force)
    scores = scores_beside(spec_path)
    ranking = ranking_of(spec, scores)
    doses = doses_for(len(ranking), settings.doses)
    items = load_benchmark(settings.benchmark, split=settings.split, limit=settings.limit)
    items = check_metric(settings.metric, items)
    pairs = read_pairs(settings.pairs, max_pairs=settings.max_pairs, seed=settings.seed) if settings.pairs else None
    if pairs is not None and not pairs:
        raise MoeguardError(f"--pairs {settings.pairs} holds no pairs; pass a pair file with at least two pairs")
    source = f"|risk_diff| from {spec_path.parent / 'experts.csv'}" if scores else "the spec's order"
    return ValidatePlan(
        settings, out, spec, spec_path, ranking, source, doses, items, judge, pairs, [note] if note else []
    )


@dataclass
class DosePoint:
    """One dose: the selection's metric with its CI, the random sets' values and the permutation p-value."""

    dose: int
    experts: list[Ranked]
    selected: float
    ci_low: float
    ci_high: float
    random_values: list[float]
    p_value: float
    beats_all_random: bool

    def row(self) -> list:
        mean, sd = mean_sd(self.random_values)
        return [
            self.dose,
            _fmt_experts(self.experts),
            self.selected,
            self.ci_low,
            self.ci_high,
            mean,
            sd,
            min(self.random_values),
            max(self.random_values),
            self.p_value,
            int(self.beats_all_random),
        ]


DOSE_COLUMNS = [
    "dose",
    "experts",
    "selected",
    "ci_low",
    "ci_high",
    "random_mean",
    "random_sd",
    "random_min",
    "random_max",
    "p_value",
    "beats_all_random",
]
LOO_COLUMNS = ["rank", "layer", "expert", "role", "without", "attribution", "ci_low", "ci_high"]


def _fmt_experts(ranked: Sequence[Ranked]) -> str:
    return " ".join(f"{'+' if r.role == 'activate' else '-'}{r.layer}:{r.expert}" for r in ranked)


@dataclass
class ValidateResult:
    """A finished validate run."""

    output: Path
    baseline: float
    full: float
    direction: str
    points: list[DosePoint]
    loo: list[dict]
    loo_summary: dict | None
    stability: dict | None
    files: list[Path]
    seconds: float
    generations: int
    summary: dict


def run_validate(settings: ValidateSettings, progress: bool = True, model=None, tokenizer=None) -> ValidateResult:
    """Run the validation and write the run folder (see the module docstring); ``model``/``tokenizer``: use an
    already loaded model (``settings.model`` still names it)."""
    from moeguard.adapters import inspect_moe

    start = time.perf_counter()
    plan = prepare(settings)
    if model is None:
        from moeguard.models import load_model

        model, tokenizer = load_model(
            settings.model, trust_remote_code=settings.trust_remote_code, device=settings.device, dtype=settings.dtype
        )
    moe = inspect_moe(model)
    plan.spec.validate(moe)
    behaviour = Behaviour(
        model, tokenizer, plan.items, plan.judge.load(), settings.metric, settings.max_new_tokens, settings.batch_size
    )
    ranked, spec = plan.ranking, plan.spec
    randoms = [matched_random_ranking(ranked, moe.num_experts, settings.seed + i) for i in range(settings.random_sets)]
    n_steps = 2 + len(plan.doses) * (1 + len(randoms)) + (len(ranked) if settings.loo else 0)
    bar = _Steps(progress, n_steps)
    with bar:
        base_out = bar.run("baseline", lambda: behaviour.outcomes(None, "baseline"))
        full_out = bar.run("full spec", lambda: behaviour.outcomes(spec_of(ranked, spec), "full"))
        baseline, full = _mean(base_out), _mean(full_out)
        direction = auto_direction(baseline, full) if settings.direction == "auto" else settings.direction
        points, random_rows = [], []
        for dose in plan.doses:
            chosen = ranked[:dose]
            sel = bar.run(f"dose {dose}", lambda c=chosen, d=dose: behaviour.outcomes(spec_of(c, spec), f"dose{d}"))
            values = present(sel)
            low, high = bootstrap_ci(values, settings.bootstrap, seed=settings.seed)
            rvals = []
            for i, rr in enumerate(randoms):
                seed = settings.seed + i
                out = bar.run(
                    f"dose {dose} random {seed}",
                    lambda r=rr, d=dose, s=seed: behaviour.outcomes(spec_of(r[:d], spec), f"dose{d}:random{s}"),
                )
                rvals.append(_mean(out))
                random_rows.append([seed, dose, _fmt_experts(rr[:dose]), rvals[-1]])
            selected = _mean(sel)
            points.append(
                DosePoint(
                    dose,
                    chosen,
                    selected,
                    low,
                    high,
                    rvals,
                    permutation_p(selected, rvals, direction),
                    beats_all(selected, rvals, direction),
                )
            )
        loo_rows: list[dict] = []
        summary_loo = None
        if settings.loo:
            dropped = []
            for j, r in enumerate(ranked):
                rest = ranked[:j] + ranked[j + 1 :]
                out = bar.run(
                    f"without {r.layer}:{r.expert}",
                    lambda x=rest, e=r: behaviour.outcomes(spec_of(x, spec), f"without{e.layer}:{e.expert}"),
                )
                dropped.append(_mean(out))
                ref, cond = paired(out, full_out)
                diff = paired_bootstrap(ref, cond, settings.bootstrap, seed=settings.seed)
                loo_rows.append(
                    {
                        "rank": j + 1,
                        "layer": r.layer,
                        "expert": r.expert,
                        "role": r.role,
                        "without": dropped[-1],
                        "attribution": loo_attribution(full, [dropped[-1]])[0],
                        "ci_low": diff.low,
                        "ci_high": diff.high,
                    }
                )
            summary_loo = loo_summary(baseline, full, dropped).to_dict()
    stability = None
    stability_report = None
    if plan.pairs is not None:
        from moeguard.detect import detect_experts
        from moeguard.validation.stability import selection_stability

        detection = detect_experts(
            moe, tokenizer, plan.pairs, bootstrap=0, seed=settings.seed, model_name=settings.model
        )
        stability_report = selection_stability(detection, spec, settings.resamples, settings.splits, settings.seed)
        stability = stability_report.to_dict()
    seconds = time.perf_counter() - start
    summary = {
        "metric": settings.metric,
        "direction": direction,
        "baseline": baseline,
        "full": full,
        "full_effect": full - baseline,
        "experts": len(ranked),
        "doses": [
            {
                "dose": p.dose,
                "selected": p.selected,
                "ci": [p.ci_low, p.ci_high],
                "random_mean": mean_sd(p.random_values)[0],
                "random_sd": mean_sd(p.random_values)[1],
                "random_min": min(p.random_values),
                "random_max": max(p.random_values),
                "p_value": p.p_value,
                "beats_all_random": p.beats_all_random,
            }
            for p in points
        ],
        "min_p_value": 1 / (settings.random_sets + 1),
        "beats_all_random_from_dose": beats_random_from([p.dose for p in points], [p.beats_all_random for p in points]),
        "loo": summary_loo,
        "stability": stability,
        "prompts": len(plan.items),
        "generations": behaviour.generations,
        "seconds": round(seconds, 1),
    }
    files = _write(plan, behaviour, points, random_rows, loo_rows, stability_report, summary, moe)
    return ValidateResult(
        plan.output,
        baseline,
        full,
        direction,
        points,
        loo_rows,
        summary_loo,
        stability,
        files,
        seconds,
        behaviour.generations,
        summary,
    )


def _spec_name(path: Path) -> str:
    """A spec's name in titles: its detect run folder for a ``spec.json``, else the file stem."""
    return path.parent.name if path.name == "spec.json" and path.parent.name else path.stem


def _mean(values: Sequence[int | None]) -> float:
    kept = present(values)
    return sum(kept) / len(kept) if kept else math.nan


def _write(plan, behaviour, points, random_rows, loo_rows, stability_report, summary, moe) -> list[Path]:
    from moeguard.validation.plots import plot_dose_response

    out, s = plan.output, plan.settings
    out.mkdir(parents=True, exist_ok=True)
    for stale in (LOO_CSV, STABILITY_CSV):
        (out / stale).unlink(missing_ok=True)
    files = [
        write_csv_atomic(out / DOSES_CSV, DOSE_COLUMNS, [p.row() for p in points]),
        write_csv_atomic(out / RANDOM_CSV, ["seed", "dose", "experts", "value"], random_rows),
    ]
    if loo_rows:
        files.append(write_csv_atomic(out / LOO_CSV, LOO_COLUMNS, [[r[c] for c in LOO_COLUMNS] for r in loo_rows]))
    if stability_report is not None:
        rows = []
        spec_set = {(r.layer, r.expert, r.role) for r in plan.ranking}
        keys = sorted(set(stability_report.resample_frequency) | set(stability_report.half_frequency) | spec_set)
        for key in keys:
            rows.append(
                [
                    key[0],
                    key[1],
                    key[2],
                    int(key in spec_set),
                    stability_report.resample_frequency.get(key, 0.0),
                    stability_report.half_frequency.get(key, 0.0),
                ]
            )
        files.append(
            write_csv_atomic(
                out / STABILITY_CSV,
                ["layer", "expert", "role", "in_spec", "resample_frequency", "half_frequency"],
                rows,
            )
        )
    lines = [json.dumps(record, ensure_ascii=False) for record in behaviour.samples]
    files.append(write_text_atomic(out / SAMPLES, "\n".join(lines) + "\n"))
    files.append(
        plot_dose_response(
            summary, random_rows, out / PLOT, title=f"{_spec_name(plan.spec_path)}: {s.metric} on {s.benchmark}"
        )
    )
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(s).items()}
    settings["doses"] = list(plan.doses)
    meta = run_metadata(
        s.model,
        command="validate",
        settings=settings,
        spec=plan.spec.to_dict(),
        spec_path=str(plan.spec_path),
        ranking=[r.to_list() for r in plan.ranking],
        ranking_source=plan.ranking_source,
        judge=plan.judge.label,
        moe=moe.summary(),
        notes=plan.notes,
        summary=summary,
    )
    files.append(write_json_atomic(out / VALIDATE_JSON, meta))
    return files


class _Steps:
    """A progress bar over generation steps (a no-op when disabled)."""

    def __init__(self, enabled: bool, total: int):
        self.enabled, self.total = enabled, total
        self.bar = None

    def __enter__(self):
        if self.enabled:
            from moeguard.progress import progress_bar

            self.bar = progress_bar()
            self.bar.__enter__()
            self.task = self.bar.add_task("validate", total=self.total)
        return self

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.__exit__(*exc)
        return False

    def run(self, what: str, work):
        if self.bar is not None:
            self.bar.update(self.task, description=f"validate: {what}")
        value = work()
        if self.bar is not None:
            self.bar.advance(self.task)
        return value
