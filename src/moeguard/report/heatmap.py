"""The detection heatmap and top-experts table (matplotlib Agg canvas, no pyplot global state)."""

from __future__ import annotations

from pathlib import Path

import torch

from moeguard.artifacts import save_figure_atomic
from moeguard.detect import DetectionResult
from moeguard.steer import SteeringSpec


def plot_risk_heatmap(
    result: DetectionResult,
    path: str | Path,
    spec: SteeringSpec | None = None,
    title: str | None = None,
    specs: dict[str, SteeringSpec] | None = None,
) -> Path:
    """Write a layers × experts heatmap of risk_diff (diverging colours centred at 0) as PNG.

    Activated experts of ``spec`` are marked with ▲, deactivated ones with ▼; ``specs`` marks several named
    specs (one edge colour each, named in the legend). Rows are labelled with decoder-layer indices (dense
    layers are absent). Returns the written path.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.colors import TwoSlopeNorm
    from matplotlib.figure import Figure

    diff = result.risk_diff.numpy()
    n_layers, n_experts = diff.shape
    limit = float(abs(diff).max()) if diff.size else 0.0
    limit = limit if limit > 0 else 1e-9
    width = min(max(5.0, 2.5 + 0.18 * n_experts), 24.0)
    height = min(max(3.0, 1.8 + 0.3 * n_layers), 18.0)
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    image = axes.imshow(
        diff,
        cmap="RdBu_r",
        norm=TwoSlopeNorm(vcenter=0.0, vmin=-limit, vmax=limit),
        aspect="auto",
        interpolation="nearest",
    )
    figure.colorbar(image, ax=axes, label="risk difference (rate A − rate B)")
    rows = {layer: i for i, layer in enumerate(result.layers)}
    named = dict(specs or {})
    if spec is not None:
        named = {"": spec, **named}
    colours = ("black", "tab:green", "tab:purple", "tab:orange")
    marked = False
    for number, ((name, marked_spec), colour) in enumerate(zip(named.items(), colours * 4, strict=False)):
        offset = (number - (len(named) - 1) / 2) * 0.28  # side by side when two specs mark one cell
        marks = ((marked_spec.activate, "^", "activated"), (marked_spec.deactivate, "v", "deactivated"))
        for experts, marker, label in marks:
            if experts:
                marked = True
                axes.scatter(
                    [e + offset for _, e in experts],
                    [rows[layer] for layer, _ in experts],
                    marker=marker,
                    facecolors="none",
                    edgecolors=colour,
                    linewidths=1.2,
                    s=60,
                    label=f"{name}: {label}" if name else label,
                )
    if marked:
        figure.legend(loc="outside lower center", ncol=2, fontsize="small", frameon=False)
    step = max(1, n_layers // 24)
    axes.set_yticks(range(0, n_layers, step), [str(result.layers[i]) for i in range(0, n_layers, step)])
    if n_experts <= 64:
        axes.set_xticks(range(n_experts))
        axes.tick_params(axis="x", labelsize="x-small")
    axes.set_xlabel("expert")
    axes.set_ylabel("decoder layer")
    figure.suptitle(title or f"SteerMoE risk difference ({result.pairs} pairs)", fontsize="medium")
    return save_figure_atomic(figure, path, dpi=120)


def top_experts_table(
    result: DetectionResult,
    spec: SteeringSpec | None = None,
    stability: torch.Tensor | None = None,
    n: int = 10,
    test: str = "pair",
):
    """A rich Table of the ``n`` experts with the largest |risk_diff|, their 95% bootstrap CI, the q-value
    of ``test`` (``"pair"``, or ``"token"``; the pair test falls back to empty cells without per-pair
    counts) and their selection status."""
    from rich.table import Table

    activated = set(spec.activate) if spec is not None else set()
    deactivated = set(spec.deactivate) if spec is not None else set()
    tokens = f"{result.tokens_a} A / {result.tokens_b} B tokens"
    pairs = "" if result.effective_pairs is None else f", {result.effective_pairs} distinct pairs"
    table = Table(title=f"top {n} experts by |risk difference| ({tokens}{pairs})")
    q_column = "pair_q_value" if test == "pair" else "q_value"
    for column in ("layer", "expert", "rate A", "rate B", "diff", "95% CI", f"q ({test})", "stab.", "steer"):
        table.add_column(column, justify="right" if column != "steer" else "left")

    def number(value: float | None, style: str) -> str:
        return "" if value is None else format(value, style)

    for row in result.rows(stability)[:n]:
        key = (row["layer"], row["expert"])
        selected = "on" if key in activated else "off" if key in deactivated else ""
        interval = "" if row["ci_low"] is None else f"{row['ci_low']:+.2f}..{row['ci_high']:+.2f}"
        table.add_row(
            str(row["layer"]),
            str(row["expert"]),
            f"{row['rate_a']:.3f}",
            f"{row['rate_b']:.3f}",
            f"{row['risk_diff']:+.3f}",
            interval,
            number(row[q_column], ".2g"),
            number(row["stability"], ".2f"),
            selected,
        )
    return table
