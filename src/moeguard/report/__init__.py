"""Figures and run pages (matplotlib Agg canvas, never pyplot global state).

* :mod:`moeguard.report.heatmap`: the detection heatmap and top-experts table;
* :mod:`moeguard.report.plots`: eval bar charts with CI error bars, drift lines, a heatmap from ``experts.csv``;
* :mod:`moeguard.report.page`: one markdown page from detect / eval / drift run folders (``moeguard report``).
"""

from moeguard.report.heatmap import plot_risk_heatmap, top_experts_table

__all__ = ["plot_risk_heatmap", "top_experts_table"]
