"""``moeguard eval``: a benchmark under steering conditions, side by side, judged, with CIs and paired tests.

>>> settings = EvalSettings(model="builtin:organism", benchmark="builtin:organism-harmful",
...                         steer=("runs/demo/unsafe_spec.json",), control=5, output="runs/eval")
>>> result = run_eval(settings)
>>> print(markdown_tables(result.rows))

Conditions: ``baseline`` (no steering), each ``--steer`` spec (named by its file stem) and, with
``control=N``, a random control per spec (``SteeringSpec.random_like(model, seed)`` for seeds
``seed .. seed+N-1``: the same number of experts per layer), each crossed with every jailbreak (plus none).
Generation goes through :func:`moeguard.generation.generate` only (chat template, greedy, batched); the
judge labels each reply against the *original* request; :mod:`moeguard.eval.outcomes` turns verdicts into
per-prompt outcomes and :mod:`moeguard.eval.summary` into rates with CIs and paired tests.

The run folder: ``samples.jsonl`` (one record per prompt × condition × jailbreak × seed, appended per batch),
``summary.csv``, ``summary.json``, ``run.json`` (settings, their hash, metadata). A run that stops resumes from
``samples.jsonl`` when started again with the same settings (batches are fixed over the benchmark, so every
sample is generated in the same batch as in an uninterrupted run) and ends with the same summary. Other
settings in the same folder are refused unless ``overwrite``. Every input is checked before the model loads.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from moeguard.artifacts import run_metadata, sha256_of, write_json_atomic
from moeguard.errors import MoeguardError, parameter_error
from moeguard.eval.benchmarks import BenchmarkItem, load_benchmark
from moeguard.eval.jailbreaks import Jailbreak, parse_jailbreaks
from moeguard.eval.judge_choice import JudgeChoice, check_judge
from moeguard.eval.outcomes import outcomes
from moeguard.eval.samples import SampleStore, sample_key
from moeguard.eval.specs import CONTROL_PREFIX, load_specs
from moeguard.eval.summary import BASELINE, NO_JAILBREAK, Cell, SummaryRow, summarise, write_summary
from moeguard.steer import SteeringSpec

SAMPLES, SUMMARY_CSV, SUMMARY_JSON, RUN_JSON = "samples.jsonl", "summary.csv", "summary.json", "run.json"


@dataclass
class EvalSettings:
    """What ``moeguard eval`` runs (see the module docstring). Defaults match ``moeguard demo``."""

    model: str
    benchmark: str
    output: Path | str
    split: str | None = None
    limit: int | None = None
    steer: Sequence[Path | str] = ()
    control: int = 0
    jailbreaks: Sequence[str] = ()
    judge: str = "refusal"
    max_new_tokens: int = 40
    batch_size: int = 40
    seed: int = 0
    bootstrap: int = 1000
    overwrite: bool = False
    trust_remote_code: bool = False
    #: Where and in which dtype the model runs (None: as loaded, on the CPU).
    device: str | None = None
    dtype: str | None = None


@dataclass
class EvalPlan:
    """Checked inputs: items, named specs, jailbreaks, judge, and the hash of what determines the samples."""

    settings: EvalSettings
    output: Path
    items: list[BenchmarkItem]
    specs: dict[str, SteeringSpec]
    jailbreaks: dict[str, Jailbreak]
    judge: JudgeChoice
    identity: dict
    settings_sha256: str


@dataclass
class EvalResult:
    """A finished eval run: its summary rows, written files, and how many samples it generated now."""

    output: Path
    rows: list[SummaryRow]
    files: list[Path]
    samples: int
    generated: int
    seconds: float
    settings_sha256: str
    cells: list[Cell] = field(default_factory=list)


# ---------------------------------------------------------------------------------------- checks
def _check_numbers(s: EvalSettings) -> None:
    for name, value, least in (
        ("max_new_tokens", s.max_new_tokens, 1),
        ("batch_size", s.batch_size, 1),
        ("control", s.control, 0),
        ("seed", s.seed, 0),
        ("bootstrap", s.bootstrap, 1),
    ):
        if not isinstance(value, int) or isinstance(value, bool) or value < least:
            raise parameter_error(name, f"must be an integer >= {least}, got {value!r}")
    if s.limit is not None and s.limit < 1:
        raise parameter_error("limit", f"must be at least 1, got {s.limit}")


def _output(path: Path | str) -> Path:
    out = Path(path).expanduser()
    if out.exists() and not out.is_dir():
        raise MoeguardError(f"--output {out} is a file; pass a folder for the eval run", param="output")
    return out


def _items_sha256(items: Sequence[BenchmarkItem]) -> str:
    """Hash of the items' content (not of where the file was read from: the same set resumes from any path)."""
    content = [{k: v for k, v in i.to_dict().items() if k != "source"} for i in items]
    return sha256_of(json.dumps(content, sort_keys=True, ensure_ascii=False, default=str))


def _model_identity(name: str) -> str:
    """A local model folder by its absolute path (any spelling resumes); builtin names and hub ids as given."""
    local = Path(name).expanduser()
    return str(local.resolve()) if not name.startswith("builtin:") and local.exists() else name


def prepare(settings: EvalSettings) -> EvalPlan:
    """Check every input without loading the model; returns the plan. One-line MoeguardError on bad input."""
    _check_numbers(settings)
    out = _output(settings.output)
    judge = check_judge(settings.judge)
    jailbreaks: dict[str, Jailbreak] = {}
    for text in settings.jailbreaks:
        jailbreak = parse_jailbreaks(text)
        if jailbreak.spec != NO_JAILBREAK:
            jailbreaks.setdefault(jailbreak.spec, jailbreak)
    specs = load_specs(settings.steer, settings.model)
    if settings.control and not specs:
        raise parameter_error("control", "needs a --steer spec: the control steers random experts of its size")
    items = load_benchmark(settings.benchmark, split=settings.split, limit=settings.limit)
    if not items:
        raise MoeguardError(f"benchmark {settings.benchmark} has no items; pass another --benchmark or --split")
    identity = {  # what determines the samples (the benchmark by its items, wherever it was read from)
        "model": _model_identity(settings.model),
        "items": len(items),
        "items_sha256": _items_sha256(items),
        "specs": {name: spec.to_dict() for name, spec in specs.items()},
        "control": settings.control,
        "jailbreaks": list(jailbreaks),
        "judge": judge.label,
        "max_new_tokens": settings.max_new_tokens,
        "batch_size": settings.batch_size,
        "seed": settings.seed,
    }
    digest = sha256_of(json.dumps(identity, sort_keys=True))
    plan = EvalPlan(settings, out, items, specs, jailbreaks, judge, identity, digest)
    _check_folder(plan)
    return plan


def _check_folder(plan: EvalPlan) -> None:
    out = plan.output
    run_file, samples = out / RUN_JSON, out / SAMPLES
    if not run_file.exists():
        if samples.exists() and not plan.settings.overwrite:
            raise MoeguardError(
                f"--output {out} holds {SAMPLES} but no {RUN_JSON}; pass --overwrite or another --output"
            )
        return
    try:
        recorded = json.loads(run_file.read_text(encoding="utf-8"))
        previous = recorded["settings_sha256"]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError):
        previous, recorded = None, {}
    if previous == plan.settings_sha256 or plan.settings.overwrite:
        return
    before = recorded.get("identity", {}) if isinstance(recorded, dict) else {}
    changed = sorted(k for k in plan.identity if before.get(k) != plan.identity[k]) or ["unknown"]
    raise MoeguardError(
        f"--output {out} holds another eval run (different {', '.join(changed)}); pass --overwrite to replace it "
        "or another --output"
    )


# ---------------------------------------------------------------------------------------- the run
Runs = list[tuple[int, SteeringSpec | None]]


def cells_of(plan: EvalPlan, controls: dict[str, list[SteeringSpec]]) -> list[tuple[Cell, Runs]]:
    """The grid in run order: every jailbreak (none first) × baseline, specs, controls; each cell's
    ``(seed, spec)`` runs."""
    seed = plan.settings.seed
    conditions: list[tuple[str, str | None, bool, int, Runs]] = [(BASELINE, None, False, 0, [(seed, None)])]
    for name, spec in plan.specs.items():
        single: Runs = [(seed, spec)]
        conditions.append((name, name, False, len(spec), single))
    for name, spec in plan.specs.items():
        runs: Runs = [(seed + i, c) for i, c in enumerate(controls.get(name, []))]
        if runs:
            conditions.append((CONTROL_PREFIX + name, name, True, len(spec), runs))
    grid = []
    for jailbreak in (NO_JAILBREAK, *plan.jailbreaks):
        for condition, steering, control, experts, runs in conditions:
            grid.append((Cell(condition, jailbreak, steering, control, experts), runs))
    return grid


def _reset(out: Path) -> None:
    for name in (SAMPLES, SUMMARY_CSV, SUMMARY_JSON, RUN_JSON):
        (out / name).unlink(missing_ok=True)


def _write_run_json(plan: EvalPlan, status: str, extra: dict | None = None) -> Path:
    s = plan.settings
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(s).items()}
    settings["steer"] = [str(p) for p in s.steer]
    settings["jailbreaks"] = list(s.jailbreaks)
    return write_json_atomic(
        plan.output / RUN_JSON,
        run_metadata(
            s.model,
            command="eval",
            status=status,
            settings_sha256=plan.settings_sha256,
            identity=plan.identity,
            settings=settings,
            **(extra or {}),
        ),
    )


def run_eval(settings: EvalSettings, progress: bool = True, model=None, tokenizer=None) -> EvalResult:
    """Run (or resume) the eval and write the run folder; see the module docstring.

    ``model``/``tokenizer``: an already loaded model to use instead of loading ``settings.model`` (tests and
    benchmarks; ``settings.model`` still names it in the artifacts).
    """
    from moeguard import generation
    from moeguard.adapters import inspect_moe

    start = time.perf_counter()
    plan = prepare(settings)
    out = plan.output
    if settings.overwrite:
        _reset(out)
    if model is None:
        from moeguard.models import load_model

        model, tokenizer = load_model(
            settings.model, trust_remote_code=settings.trust_remote_code, device=settings.device, dtype=settings.dtype
        )
    moe = inspect_moe(model)
    for spec in plan.specs.values():
        spec.validate(moe)
    controls = {
        name: [spec.random_like(moe, settings.seed + i) for i in range(settings.control)]
        for name, spec in plan.specs.items()
    }
    grid = cells_of(plan, controls)
    judge = plan.judge.load()
    out.mkdir(parents=True, exist_ok=True)
    store = SampleStore(out / SAMPLES)
    store.repair()
    done = set(store.load())
    _write_run_json(plan, "running", {"moe": moe.summary(), "judge": plan.judge.label})
    total = sum(len(runs) for _, runs in grid) * len(plan.items)
    generated = 0
    bar = _progress(progress)
    with bar:
        task = bar.add_task("eval", total=total, completed=min(len(done), total))
        for cell, runs in grid:
            jailbreak = plan.jailbreaks.get(cell.jailbreak)
            for seed, steer in runs:
                for first in range(0, len(plan.items), settings.batch_size):
                    batch = list(enumerate(plan.items[first : first + settings.batch_size], start=first))
                    keys = [sample_key(cell.condition, cell.jailbreak, seed, i) for i, _ in batch]
                    missing = [k not in done for k in keys]
                    if not any(missing):
                        continue
                    bar.update(task, description=f"eval {cell.name} (seed {seed})")
                    _seed_torch(settings.seed, cell, seed, first)
                    prompts = [jailbreak(item.prompt) if jailbreak else item.prompt for _, item in batch]
                    texts = generation.generate(
                        model,
                        tokenizer,
                        prompts,
                        max_new_tokens=settings.max_new_tokens,
                        steer=steer,
                        batch_size=settings.batch_size,
                    )
                    verdicts = judge.judge([item.prompt for _, item in batch], texts)
                    records = [
                        _record(key, index, item, cell, seed, text, verdict, judge)
                        for (index, item), key, text, verdict, new in zip(
                            batch, keys, texts, verdicts, missing, strict=True
                        )
                        if new
                    ]
                    store.append(records)
                    done.update(r["key"] for r in records)
                    generated += len(records)
                    bar.update(task, advance=len(records))
    records = list(store.load().values())
    cells = [cell for cell, _ in grid]
    rows = summarise(records, cells, resamples=settings.bootstrap, seed=settings.seed)
    seconds = time.perf_counter() - start
    meta = {
        "settings_sha256": plan.settings_sha256,
        "model": settings.model,
        "benchmark": settings.benchmark,
        "split": settings.split,
        "judge": plan.judge.label,
        "items": len(plan.items),
        "samples": len(records),
        "bootstrap": settings.bootstrap,
        "level": 0.95,
        "seed": settings.seed,
        "conditions": [c.name for c in cells],
    }
    files = write_summary(rows, out, meta)
    files.append(
        _write_run_json(
            plan,
            "complete",
            {
                "moe": moe.summary(),
                "judge": plan.judge.label,
                "samples": len(records),
                "generated_now": generated,
                "seconds": round(seconds, 1),
            },
        )
    )
    files.insert(0, store.path)
    return EvalResult(out, rows, files, len(records), generated, seconds, plan.settings_sha256, cells)


def _seed_torch(seed: int, cell: Cell, run_seed: int, first: int) -> None:
    """Seed torch per batch from the batch's identity, so a resumed run draws what an uninterrupted one did."""
    import torch

    digest = sha256_of(f"{seed}|{cell.condition}|{cell.jailbreak}|{run_seed}|{first}")
    torch.manual_seed(int(digest[:15], 16))


def _record(key, index, item, cell, seed, text, verdict, judge) -> dict:
    return {
        "key": key,
        "index": index,
        "id": item.id,
        "kind": item.kind,
        "prompt": item.prompt,
        "condition": cell.condition,
        "steering": cell.steering,
        "control": cell.control,
        "experts": cell.experts,
        "jailbreak": cell.jailbreak,
        "seed": seed,
        "output": text,
        "label": verdict.label,
        "score": verdict.to_dict()["score"],
        "metrics": outcomes(item, verdict, text, judge),
        "details": verdict.to_dict()["details"],
    }


class _NoBar:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def add_task(self, *args, **kwargs):
        return 0

    def update(self, *args, **kwargs):
        return None


def _progress(enabled: bool):
    if not enabled:
        return _NoBar()
    from moeguard.progress import progress_bar

    return progress_bar()
