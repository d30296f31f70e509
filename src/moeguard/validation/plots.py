"""The dose–response figure (Agg canvas, no pyplot state): the selection with 95% CIs, every matched random
set as a thin curve, their mean, and the unsteered baseline."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from moeguard.artifacts import save_figure_atomic


def plot_dose_response(
    summary: dict, random_rows: Sequence[Sequence], path: str | Path, title: str | None = None
) -> Path:
    """``summary``: :func:`moeguard.validation.run.run_validate`'s summary (``doses``, ``baseline``, ``metric``);
    ``random_rows``: ``[seed, dose, experts, value]`` rows."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.4, 4.0), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    doses = [d["dose"] for d in summary["doses"]]
    curves: dict = {}
    for seed, dose, _, value in random_rows:
        curves.setdefault(seed, {})[dose] = value
    for k, (_, curve) in enumerate(sorted(curves.items())):
        xs = sorted(curve)
        axes.plot(
            xs,
            [100 * curve[x] for x in xs],
            color="0.6",
            linewidth=0.7,
            alpha=0.7,
            label="random sets (matched per layer)" if k == 0 else None,
        )
    means = [100 * d["random_mean"] for d in summary["doses"]]
    axes.plot(doses, means, color="0.3", linestyle="--", linewidth=1.2, label="random mean")
    selected = [100 * d["selected"] for d in summary["doses"]]
    low = [
        s - 100 * d["ci"][0] if not math.isnan(d["ci"][0]) else 0.0
        for s, d in zip(selected, summary["doses"], strict=True)
    ]
    high = [
        100 * d["ci"][1] - s if not math.isnan(d["ci"][1]) else 0.0
        for s, d in zip(selected, summary["doses"], strict=True)
    ]
    axes.errorbar(
        doses,
        selected,
        yerr=[low, high],
        color="tab:red",
        marker="o",
        capsize=3,
        linewidth=1.8,
        label="selected (95% CI)",
    )
    for d, s in zip(summary["doses"], selected, strict=True):
        axes.annotate(
            f"p={d['p_value']:.2g}",
            (d["dose"], s),
            textcoords="offset points",
            xytext=(4, -12),
            fontsize="x-small",
            color="tab:red",
        )
    axes.axhline(100 * summary["baseline"], color="tab:blue", linestyle=":", label="baseline (no steering)")
    axes.set_xscale("log", base=2)
    axes.set_xticks(doses, [str(d) for d in doses])
    axes.set_ylim(-3, 103)
    axes.set_xlabel("experts steered (dose)")
    axes.set_ylabel(f"{summary['metric']} (%)")
    axes.set_title(title or "dose–response", fontsize="medium")
    axes.legend(fontsize="x-small", loc="best")
    return save_figure_atomic(figure, path, dpi=110)
