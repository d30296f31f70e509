"""A rich table of an eval summary (the CLI's view of :mod:`moeguard.eval.summary`), one line per
(condition, metric) so that it fits a terminal whatever the number of metrics."""

from __future__ import annotations

import math
from collections.abc import Sequence

from moeguard.eval.summary import SummaryRow


def _pct(value: float | None, signed: bool = False) -> str:
    if value is None or math.isnan(value):
        return ""
    return f"{100 * value:+.1f}" if signed else f"{100 * value:.1f}"


def summary_table(rows: Sequence[SummaryRow], title: str = "eval"):
    """Rates (%, 95% CI; ± sd over seeds for a control) and the difference against the reference
    (percentage points, paired-bootstrap CI, exact McNemar p — its range over seeds for a control)."""
    from rich.table import Table

    widest = max((len(r.cell.name) for r in rows), default=9)
    table = Table(
        title=title,
        caption="Δ: against the baseline under the same jailbreak (a jailbreak's baseline: "
        "against the plain baseline); p: exact McNemar (range over control seeds)",
    )
    table.add_column("condition", min_width=widest, no_wrap=True)
    table.add_column("metric", no_wrap=True)
    for name in ("n", "rate %", "95% CI", "Δ pp", "Δ 95% CI", "p"):
        table.add_column(name, justify="right", no_wrap=True)
    previous = None
    for row in rows:
        rate = _pct(row.value) + (f" ± {_pct(row.sd)}" if row.cell.control and row.seeds > 1 else "")
        if row.mcnemar is not None:
            p = f"{row.mcnemar.p:.2g}"
        elif row.mcnemar_seeds:
            ps = [m.p for m in row.mcnemar_seeds]
            p = f"{min(ps):.2g}..{max(ps):.2g}"
        else:
            p = ""
        diff_ci = f"{_pct(row.diff_ci_low, True)}..{_pct(row.diff_ci_high, True)}" if row.diff is not None else ""
        name = row.cell.name if row.cell != previous else ""
        table.add_row(
            name,
            row.metric,
            str(row.n),
            rate,
            f"{_pct(row.ci_low)}..{_pct(row.ci_high)}",
            _pct(row.diff, True),
            diff_ci,
            p,
        )
        previous = row.cell
    return [table]
