"""Report figures on an Agg canvas (no pyplot global state): eval conditions with CI error bars, routing drift
per layer, and a risk-difference heatmap drawn from ``experts.csv`` alone."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from moeguard.artifacts import save_figure_atomic
from moeguard.eval.summary import SummaryRow, table_grid


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def plot_conditions(rows: Sequence[SummaryRow], path: str | Path, title: str | None = None) -> Path:
    """One panel per metric: a bar per condition (rate in %), error bars from the 95% bootstrap CI.

    A random control's bar is its mean over seeds, hatched; its error bar is the CI of the per-prompt mean.
    """
    metrics, cells = table_grid(rows)
    if not metrics:
        raise ValueError("no summary rows to plot")
    names = [cell.name for cell, _ in cells]
    figure = _figure(min(4.0 + 0.9 * len(names) * len(metrics) / 2, 22.0), 3.8)
    panels = figure.subplots(1, len(metrics), squeeze=False)[0]
    for axes, metric in zip(panels, metrics, strict=True):
        values, low, high, hatches = [], [], [], []
        for cell, by_metric in cells:
            row = by_metric.get(metric)
            value = 100 * row.value if row is not None and not math.isnan(row.value) else math.nan
            values.append(value)
            low.append(value - 100 * row.ci_low if row is not None and not math.isnan(row.ci_low) else 0.0)
            high.append(100 * row.ci_high - value if row is not None and not math.isnan(row.ci_high) else 0.0)
            hatches.append("//" if cell.control else "")
        bars = axes.bar(
            range(len(names)),
            values,
            yerr=[low, high],
            capsize=3,
            color="tab:blue",
            alpha=0.8,
            edgecolor="black",
            linewidth=0.6,
        )
        for bar, hatch in zip(bars, hatches, strict=True):
            bar.set_hatch(hatch)
        axes.set_xticks(range(len(names)), names, rotation=35, ha="right", fontsize="small")
        axes.set_ylim(0, 105)
        axes.set_title(metric, fontsize="medium")
        axes.set_ylabel("%")
    figure.suptitle(
        title or "conditions (95% bootstrap CI; hatched: random control, mean over seeds)", fontsize="medium"
    )
    return save_figure_atomic(figure, path, dpi=110)


def plot_drift(
    layers: Sequence[int], kl: Sequence[float], jaccard: Sequence[float], path: str | Path, title: str | None = None
) -> Path:
    """Per-layer routing drift: KL on the left axis, top-k Jaccard overlap on the right."""
    figure = _figure(7.0, 3.6)
    left = figure.add_subplot()
    left.plot(list(layers), list(kl), marker="o", color="tab:red")
    left.set_xticks(list(layers))
    left.set_xlabel("decoder layer")
    left.set_ylabel("KL(base ‖ tuned)", color="tab:red")
    right = left.twinx()
    right.plot(list(layers), list(jaccard), marker="s", color="tab:blue")
    right.set_ylabel("top-k Jaccard", color="tab:blue")
    right.set_ylim(0, 1.05)
    left.set_title(title or "routing drift per layer", fontsize="medium")
    return save_figure_atomic(figure, path, dpi=110)


def plot_experts_grid(rows: Sequence[dict], path: str | Path, title: str | None = None) -> Path:
    """A layers × experts heatmap of ``risk_diff`` from ``experts.csv`` rows (for folders without heatmap.png)."""
    import numpy as np
    from matplotlib.colors import TwoSlopeNorm

    layers = sorted({int(r["layer"]) for r in rows})
    experts = max(int(r["expert"]) for r in rows) + 1
    grid = np.zeros((len(layers), experts))
    position = {layer: i for i, layer in enumerate(layers)}
    for r in rows:
        grid[position[int(r["layer"])], int(r["expert"])] = float(r["risk_diff"])
    limit = float(abs(grid).max()) or 1e-9
    figure = _figure(min(max(5.0, 2.5 + 0.18 * experts), 24.0), min(max(3.0, 1.8 + 0.3 * len(layers)), 18.0))
    axes = figure.add_subplot()
    image = axes.imshow(
        grid,
        cmap="RdBu_r",
        norm=TwoSlopeNorm(vcenter=0.0, vmin=-limit, vmax=limit),
        aspect="auto",
        interpolation="nearest",
    )
    figure.colorbar(image, ax=axes, label="risk difference")
    axes.set_yticks(range(len(layers)), [str(layer) for layer in layers])
    axes.set_xlabel("expert")
    axes.set_ylabel("decoder layer")
    axes.set_title(title or "risk difference (experts.csv)", fontsize="medium")
    return save_figure_atomic(figure, path, dpi=110)
