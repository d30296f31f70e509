"""A detection run folder, written by the library: ``experts.csv``, ``spec.json``, ``heatmap.png``, ``meta.json``.

>>> run = DetectionRun.from_result(result, Selection(n_activate=5))
>>> run.write("runs/safety", metadata={"pairs_source": "builtin:safety"})
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from moeguard.artifacts import run_metadata, write_csv_atomic, write_json_atomic
from moeguard.detect import CI_LEVEL, DetectionResult, check_selection, select_experts
from moeguard.steer import SteeringSpec

#: ``p_value`` / ``q_value``: token test; ``pair_*``: pair (sign-flip) test; ``ci_*``: 95% bootstrap CI of risk_diff.
EXPERTS_COLUMNS = [
    "layer",
    "expert",
    "rate_a",
    "rate_b",
    "risk_diff",
    "p_value",
    "q_value",
    "stability",
    "pair_p_value",
    "pair_q_value",
    "ci_low",
    "ci_high",
]


@dataclass(frozen=True)
class Selection:
    """How experts are selected from a detection result (see :func:`moeguard.detect.select_experts`)."""

    n_activate: int = 5
    n_deactivate: int = 0
    reverse: bool = False
    min_stability: float | None = None
    max_q: float | None = None
    test: str = "pair"

    def check(self, bootstrap: int | None = None) -> None:
        """Validate before any work (one-line errors naming the parameter)."""
        check_selection(self.n_activate, self.n_deactivate, self.min_stability, self.max_q, bootstrap, self.test)


@dataclass
class DetectionRun:
    """A detection result, the spec selected from it and each expert's selection stability."""

    result: DetectionResult
    selection: Selection
    spec: SteeringSpec
    stability: torch.Tensor | None

    @classmethod
    def from_result(cls, result: DetectionResult, selection: Selection) -> DetectionRun:
        s = selection
        spec = select_experts(
            result,
            s.n_activate,
            s.n_deactivate,
            reverse=s.reverse,
            min_stability=s.min_stability,
            max_q=s.max_q,
            test=s.test,
        )
        return cls(result, selection, spec, result.stability(s.n_activate, s.n_deactivate, reverse=s.reverse))

    @property
    def short(self) -> bool:
        """Whether fewer experts qualified than were asked for."""
        return len(self.spec.activate) < self.selection.n_activate or (
            len(self.spec.deactivate) < self.selection.n_deactivate
        )

    def rows(self) -> list[list[Any]]:
        """``experts.csv`` rows (every expert by |risk_diff|)."""
        return [["" if row[c] is None else row[c] for c in EXPERTS_COLUMNS] for row in self.result.rows(self.stability)]

    def write(self, output: str | Path, metadata: dict[str, Any] | None = None, title: str | None = None) -> list[Path]:
        """Write the run folder; ``metadata`` joins the run metadata in ``meta.json``."""
        from moeguard.report import plot_risk_heatmap

        output = Path(output)
        result = self.result
        written = [
            write_csv_atomic(output / "experts.csv", EXPERTS_COLUMNS, self.rows()),
            self.spec.save(output / "spec.json"),
            plot_risk_heatmap(result, output / "heatmap.png", spec=self.spec, title=title),
        ]
        meta = run_metadata(
            result.model,
            run="detect",
            data_sha256=result.data_sha256,
            pairs=result.pairs,
            tokens_a=result.tokens_a,
            tokens_b=result.tokens_b,
            seed=result.seed,
            bootstrap=result.bootstrap,
            test=self.selection.test,
            permutations=result.permutations,
            permutations_exact=result.permutations_exact,
            effective_pairs=result.effective_pairs,
            ci_level=CI_LEVEL if result.bootstrap else None,
            layers=result.layers,
            num_experts=result.num_experts,
            top_k=result.top_k,
            selection=asdict(self.selection),
            selected={"activate": len(self.spec.activate), "deactivate": len(self.spec.deactivate)},
            **(metadata or {}),
        )
        written.append(write_json_atomic(output / "meta.json", meta))
        return written
