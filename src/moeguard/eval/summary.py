"""Eval summary: rates with bootstrap CIs per (condition, jailbreak, metric), and paired tests vs a reference.

Computed from the per-sample records alone (``samples.jsonl``), so an interrupted and resumed run gets the
same summary as an uninterrupted one. For each cell and outcome (:data:`moeguard.eval.outcomes.METRICS`):

* ``value``: the share of prompts with the outcome, ``ci_low``/``ci_high`` its percentile-bootstrap CI over
  prompts (seeded);
* a random control (several seeds): ``value`` and ``sd`` are the mean and sd of the per-seed rates; the CI
  resamples prompts of the per-prompt mean over seeds;
* ``reference``: steered and control cells are compared with the unsteered baseline under the same jailbreak,
  a jailbreak's baseline with the plain baseline. ``diff`` (condition − reference) has a paired-bootstrap CI;
  ``mcnemar`` is the exact McNemar test on the per-prompt outcomes (per seed for a control:
  ``mcnemar_seeds``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from moeguard.artifacts import write_csv_atomic, write_json_atomic
from moeguard.eval.outcomes import METRICS
from moeguard.eval.stats import McNemar, bootstrap_ci, mcnemar, mean_sd, paired_bootstrap

BASELINE = "baseline"
NO_JAILBREAK = "none"


@dataclass(frozen=True)
class Cell:
    """One column of the grid: a condition (baseline, a spec, or a spec's random control) under a jailbreak."""

    condition: str
    jailbreak: str = NO_JAILBREAK
    steering: str | None = None
    control: bool = False
    experts: int = 0

    @property
    def name(self) -> str:
        """``condition`` or ``condition + jailbreak``."""
        return self.condition if self.jailbreak == NO_JAILBREAK else f"{self.condition} + {self.jailbreak}"

    def reference(self) -> tuple[str, str] | None:
        """The (condition, jailbreak) this cell is tested against (None for the plain baseline)."""
        if self.condition != BASELINE:
            return BASELINE, self.jailbreak
        if self.jailbreak != NO_JAILBREAK:
            return BASELINE, NO_JAILBREAK
        return None


@dataclass
class SummaryRow:
    """One (cell, metric) line of the summary (rates as fractions in [0, 1])."""

    cell: Cell
    metric: str
    n: int
    value: float
    ci_low: float
    ci_high: float
    seeds: int = 1
    sd: float = 0.0
    seed_values: list[float] = field(default_factory=list)
    reference: str | None = None
    diff: float | None = None
    diff_ci_low: float | None = None
    diff_ci_high: float | None = None
    mcnemar: McNemar | None = None
    mcnemar_seeds: list[McNemar] = field(default_factory=list)

    def to_dict(self) -> dict:
        c = self.cell
        return {
            "condition": c.condition,
            "jailbreak": c.jailbreak,
            "steering": c.steering,
            "control": c.control,
            "experts": c.experts,
            "metric": self.metric,
            "n": self.n,
            "value": _clean(self.value),
            "ci_low": _clean(self.ci_low),
            "ci_high": _clean(self.ci_high),
            "seeds": self.seeds,
            "sd": _clean(self.sd),
            "seed_values": [_clean(v) for v in self.seed_values],
            "reference": self.reference,
            "diff": _clean(self.diff),
            "diff_ci_low": _clean(self.diff_ci_low),
            "diff_ci_high": _clean(self.diff_ci_high),
            "mcnemar": self.mcnemar.to_dict() if self.mcnemar else None,
            "mcnemar_seeds": [m.to_dict() for m in self.mcnemar_seeds],
        }


CSV_COLUMNS = [
    "condition",
    "jailbreak",
    "metric",
    "experts",
    "n",
    "value",
    "ci_low",
    "ci_high",
    "seeds",
    "sd",
    "reference",
    "diff",
    "diff_ci_low",
    "diff_ci_high",
    "mcnemar_b",
    "mcnemar_c",
    "mcnemar_p",
]


def _clean(value: float | None) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def _csv(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def csv_row(row: SummaryRow) -> list[str]:
    """``summary.csv`` cells of a row."""
    m = row.mcnemar
    values = [
        row.cell.condition,
        row.cell.jailbreak,
        row.metric,
        row.cell.experts,
        row.n,
        row.value,
        row.ci_low,
        row.ci_high,
        row.seeds,
        row.sd,
        row.reference,
        row.diff,
        row.diff_ci_low,
        row.diff_ci_high,
        m.b if m else None,
        m.c if m else None,
        m.p if m else None,
    ]
    return [_csv(v) for v in values]


def _by_seed(records: Iterable[dict], metric: str) -> dict[int, dict[int, int]]:
    """``{seed: {item index: outcome}}`` of the records that have ``metric``."""
    out: dict[int, dict[int, int]] = {}
    for record in records:
        value = (record.get("metrics") or {}).get(metric)
        if value is not None:
            out.setdefault(int(record["seed"]), {})[int(record["index"])] = int(value)
    return out


def _per_prompt(seeds: dict[int, dict[int, int]]) -> dict[int, float]:
    """Per-prompt mean over seeds (prompts present in every seed)."""
    if not seeds:
        return {}
    common = set.intersection(*(set(v) for v in seeds.values()))
    return {i: sum(v[i] for v in seeds.values()) / len(seeds) for i in sorted(common)}


def summarise(
    records: Iterable[dict], cells: Sequence[Cell], resamples: int = 1000, level: float = 0.95, seed: int = 0
) -> list[SummaryRow]:
    """The summary rows of ``records`` for ``cells`` (in order), one per metric that has outcomes."""
    grouped: dict[tuple[str, str], list[dict]] = {}
    for record in records:
        grouped.setdefault((record["condition"], record["jailbreak"]), []).append(record)
    rows: list[SummaryRow] = []
    for cell in cells:
        mine = grouped.get((cell.condition, cell.jailbreak), [])
        reference = cell.reference()
        for metric in METRICS:
            seeds = _by_seed(mine, metric)
            if not seeds:
                continue
            prompt_means = _per_prompt(seeds)
            values = [prompt_means[i] for i in sorted(prompt_means)]
            low, high = bootstrap_ci(values, resamples, level, seed)
            seed_rates = [sum(v.values()) / len(v) for _, v in sorted(seeds.items())]
            mean, sd = mean_sd(seed_rates) if cell.control else (sum(values) / len(values), 0.0)
            row = SummaryRow(
                cell, metric, len(values), mean, low, high, len(seeds), sd, seed_rates if cell.control else []
            )
            if reference is not None:
                _compare(row, seeds, prompt_means, grouped.get(reference, []), reference, resamples, level, seed)
            rows.append(row)
    return rows


def _compare(row, seeds, prompt_means, reference_records, reference, resamples, level, seed) -> None:
    ref_seeds = _by_seed(reference_records, row.metric)
    if not ref_seeds:
        return
    ref = _per_prompt(ref_seeds)
    common = sorted(set(ref) & set(prompt_means))
    row.reference = reference[0] if reference[1] == NO_JAILBREAK else f"{reference[0]} + {reference[1]}"
    paired = paired_bootstrap([ref[i] for i in common], [prompt_means[i] for i in common], resamples, level, seed)
    row.diff, row.diff_ci_low, row.diff_ci_high = paired.diff, paired.low, paired.high
    tests = []
    for _, outcomes in sorted(seeds.items()):
        shared = [i for i in common if i in outcomes]
        tests.append(mcnemar([round(ref[i]) for i in shared], [outcomes[i] for i in shared]))
    if row.cell.control:
        row.mcnemar_seeds = tests
    else:
        row.mcnemar = tests[0]


def write_summary(rows: Sequence[SummaryRow], folder, meta: dict) -> list:
    """``summary.csv`` and ``summary.json`` (rows plus ``meta``) into ``folder``."""
    from pathlib import Path

    folder = Path(folder)
    return [
        write_csv_atomic(folder / "summary.csv", CSV_COLUMNS, [csv_row(r) for r in rows]),
        write_json_atomic(folder / "summary.json", {**meta, "rows": [r.to_dict() for r in rows]}),
    ]


def _percent(value: float | None) -> str:
    return "" if value is None or math.isnan(value) else f"{100 * value:.1f}"


def rate_cell(row: SummaryRow) -> str:
    """``96.2 [92.5, 100.0]`` (percent, with ``± sd`` over seeds for a control)."""
    sd = f" ± {_percent(row.sd)}" if row.cell.control and row.seeds > 1 else ""
    return f"{_percent(row.value)}{sd} [{_percent(row.ci_low)}, {_percent(row.ci_high)}]"


def diff_cell(row: SummaryRow) -> str:
    """``-96.2 [-100.0, -91.2], p=1.1e-24`` (percentage points; McNemar p, or its range over control seeds)."""
    if row.diff is None:
        return ""
    low, high = row.diff_ci_low if row.diff_ci_low is not None else math.nan, row.diff_ci_high
    text = f"{100 * row.diff:+.1f} [{100 * low:+.1f}, {100 * (high if high is not None else math.nan):+.1f}]"
    if row.mcnemar is not None:
        text += f", p={row.mcnemar.p:.2g}"
    elif row.mcnemar_seeds:
        ps = [m.p for m in row.mcnemar_seeds]
        text += f", p={min(ps):.2g}..{max(ps):.2g}"
    return text


def table_grid(rows: Sequence[SummaryRow]) -> tuple[list[str], list[tuple[Cell, dict[str, SummaryRow]]]]:
    """Metrics present (table columns) and the cells in order with their rows by metric."""
    metrics = [m for m in METRICS if any(r.metric == m for r in rows)]
    cells: dict[Cell, dict[str, SummaryRow]] = {}
    for row in rows:
        cells.setdefault(row.cell, {})[row.metric] = row
    return metrics, list(cells.items())


def markdown_tables(rows: Sequence[SummaryRow]) -> str:
    """Rates (%, 95% CI) and differences against the reference (percentage points, CI, McNemar p)."""
    metrics, cells = table_grid(rows)
    if not metrics:
        return "_no outcomes_"
    lines = [
        "| condition | experts | n | " + " | ".join(f"{m} (%)" for m in metrics) + " |",
        "|---|---:|---:|" + "---:|" * len(metrics),
    ]
    for cell, by_metric in cells:
        n = max(r.n for r in by_metric.values())
        cells_text = [rate_cell(by_metric[m]) if m in by_metric else "" for m in metrics]
        lines.append(f"| {cell.name} | {cell.experts} | {n} | " + " | ".join(cells_text) + " |")
    compared = [(cell, by_metric) for cell, by_metric in cells if any(r.diff is not None for r in by_metric.values())]
    if compared:
        lines += [
            "",
            "| condition | vs | " + " | ".join(f"Δ {m} (pp)" for m in metrics) + " |",
            "|---|---|" + "---:|" * len(metrics),
        ]
        for cell, by_metric in compared:
            reference = next(r.reference for r in by_metric.values() if r.reference)
            diffs = [diff_cell(by_metric[m]) if m in by_metric else "" for m in metrics]
            lines.append(f"| {cell.name} | {reference} | " + " | ".join(diffs) + " |")
    return "\n".join(lines)


def rows_from_json(data: dict) -> list[SummaryRow]:
    """Summary rows back from ``summary.json`` (for reports)."""
    rows = []
    for item in data.get("rows", []):
        cell = Cell(
            item["condition"],
            item["jailbreak"],
            item.get("steering"),
            bool(item.get("control")),
            int(item.get("experts") or 0),
        )

        def num(key, item=item):
            value = item.get(key)
            return math.nan if value is None else float(value)

        m = item.get("mcnemar")
        rows.append(
            SummaryRow(
                cell,
                item["metric"],
                int(item["n"]),
                num("value"),
                num("ci_low"),
                num("ci_high"),
                int(item["seeds"]),
                num("sd"),
                [float(v) for v in item.get("seed_values") or [] if v is not None],
                item.get("reference"),
                item.get("diff"),
                item.get("diff_ci_low"),
                item.get("diff_ci_high"),
                McNemar(m["b"], m["c"], m["p"]) if m else None,
                [McNemar(x["b"], x["c"], x["p"]) for x in item.get("mcnemar_seeds") or []],
            )
        )
    return rows
