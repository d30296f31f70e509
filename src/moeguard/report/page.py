"""``moeguard report``: one markdown page from run folders, with its figures next to it.

For each folder, whatever it holds:

* a detect run (``experts.csv``; ``spec.json``, ``meta.json``, ``heatmap.png`` when present): the top experts
  by |risk difference|, the selected spec and the heatmap (drawn from ``experts.csv`` when the folder has none);
* an eval run (``summary.json``): rates with 95% CIs, differences against the reference with paired CIs and
  McNemar p, and a bar chart of the conditions with CI error bars;
* a drift run (``drift.csv``; ``drift.json``): per-layer KL and top-k Jaccard, as a table and a line plot;
* a validate run (``validate.json``) and an attack-experts run (``attack.json``): see :mod:`moeguard.report.causal`.

Figures go to ``<report stem>_files/`` beside the page, so the page and its folder move together.

>>> build_report(["runs/safety", "runs/eval"], "report.md").path        # doctest: +SKIP
PosixPath('report.md')
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from moeguard.artifacts import write_text_atomic
from moeguard.errors import MoeguardError

RUNS = "detect, eval, drift, validate or attack experts output"
KNOWN = ("experts.csv", "summary.json", "drift.csv", "validate.json", "attack.json")


@dataclass
class ReportResult:
    """The written page, its figures and what was found in each folder."""

    path: Path
    figures: list[Path] = field(default_factory=list)
    found: dict[str, list[str]] = field(default_factory=dict)


def _read_json(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise MoeguardError(f"{path} is not valid JSON; rerun the command that wrote it") from None
    return data if isinstance(data, dict) else {}


def _read_csv(path: Path, columns: Sequence[str]) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in columns if c not in (reader.fieldnames or [])]
        if missing:
            raise MoeguardError(f"{path} lacks column(s) {', '.join(missing)}; pass a folder written by moeguard")
        return list(reader)


def _check(folders: Sequence[str | Path], output: str | Path) -> tuple[list[Path], Path]:
    if not folders:
        raise MoeguardError(f"give at least one run folder ({RUNS})")
    out = Path(output).expanduser()
    if out.is_dir():
        raise MoeguardError(f"--output {out} is a folder; pass the markdown file to write, e.g. {out}/report.md")
    checked = []
    for folder in folders:
        path = Path(folder).expanduser()
        if not path.is_dir():
            raise MoeguardError(f"run folder {path} does not exist; pass a run folder ({RUNS})")
        if not any((path / name).is_file() for name in KNOWN):
            raise MoeguardError(f"{path} holds no run ({', '.join(KNOWN)}); pass a run folder ({RUNS})")
        checked.append(path)
    return checked, out


def build_report(folders: Sequence[str | Path], output: str | Path, top: int = 10) -> ReportResult:
    """Write the page for ``folders`` to ``output`` (markdown); see the module docstring."""
    paths, out = _check(folders, output)
    assets = out.parent / f"{out.stem}_files"
    result = ReportResult(out)
    lines = ["# moeguard report", ""]
    for number, folder in enumerate(paths, start=1):
        prefix = f"{number:02d}-{folder.name or 'run'}"
        found = []
        if (folder / "experts.csv").is_file():
            lines += _detection(folder, assets, prefix, top, result)
            found.append("detect")
        if (folder / "summary.json").is_file():
            lines += _evaluation(folder, assets, prefix, result)
            found.append("eval")
        if (folder / "drift.csv").is_file():
            lines += _drift(folder, assets, prefix, result)
            found.append("drift")
        if (folder / "validate.json").is_file():
            lines += _validation(folder, assets, prefix, result)
            found.append("validate")
        if (folder / "attack.json").is_file():
            from moeguard.report.causal import attack_section

            lines += attack_section(folder, _read_json(folder / "attack.json"))
            found.append("attack")
        result.found[str(folder)] = found
    write_text_atomic(out, "\n".join(lines))
    return result


def _image(path: Path, page: Path, alt: str) -> str:
    return f"![{alt}]({Path(os.path.relpath(path, page.parent)).as_posix()})"


def _detection(folder: Path, assets: Path, prefix: str, top: int, result: ReportResult) -> list[str]:
    from moeguard.report.plots import plot_experts_grid

    rows = _read_csv(folder / "experts.csv", ("layer", "expert", "risk_diff"))
    meta = _read_json(folder / "meta.json")
    spec = _read_json(folder / "spec.json")
    lines = [f"## Detection: `{folder}`", ""]
    facts = [
        f"model `{meta['model']}`" if meta.get("model") else None,
        f"{meta['pairs']} pairs" if meta.get("pairs") else None,
        f"{meta['tokens_a']} A / {meta['tokens_b']} B tokens" if meta.get("tokens_a") is not None else None,
        f"spec: {len(spec.get('activate', []))} activated, {len(spec.get('deactivate', []))} deactivated"
        if spec
        else None,
    ]
    if any(facts):
        lines += ["; ".join(f for f in facts if f) + ".", ""]
    ranked = sorted(rows, key=lambda r: -abs(float(r["risk_diff"])))[:top]
    steered = {(int(a), int(b)): "on" for a, b in spec.get("activate", [])}
    steered.update({(int(a), int(b)): "off" for a, b in spec.get("deactivate", [])})
    lines += [
        "| layer | expert | rate A | rate B | risk diff | q | stability | steer |",
        "|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in ranked:
        key = (int(r["layer"]), int(r["expert"]))
        lines.append(
            f"| {r['layer']} | {r['expert']} | {_num(r.get('rate_a'))} | {_num(r.get('rate_b'))} | "
            f"{float(r['risk_diff']):+.3f} | {_num(r.get('q_value'), '.2g')} | "
            f"{_num(r.get('stability'), '.2f')} | {steered.get(key, '')} |"
        )
    target = assets / f"{prefix}-heatmap.png"
    assets.mkdir(parents=True, exist_ok=True)
    if (folder / "heatmap.png").is_file():
        shutil.copyfile(folder / "heatmap.png", target)
    else:
        plot_experts_grid(rows, target, title=f"risk difference: {folder.name}")
    result.figures.append(target)
    return lines + ["", _image(target, result.path, "risk difference heatmap"), ""]


def _num(value, fmt: str = ".3f") -> str:
    if value in (None, ""):
        return ""
    try:
        return format(float(value), fmt)
    except ValueError:
        return str(value)


def _evaluation(folder: Path, assets: Path, prefix: str, result: ReportResult) -> list[str]:
    from moeguard.eval.summary import markdown_tables, rows_from_json
    from moeguard.report.plots import plot_conditions

    data = _read_json(folder / "summary.json")
    try:
        rows = rows_from_json(data)
    except (KeyError, TypeError, ValueError):
        raise MoeguardError(f"{folder / 'summary.json'} is not an eval summary; rerun 'moeguard eval'") from None
    lines = [f"## Eval: `{folder}`", ""]
    facts = [
        f"model `{data['model']}`" if data.get("model") else None,
        f"benchmark `{data['benchmark']}`" if data.get("benchmark") else None,
        f"split `{data['split']}`" if data.get("split") else None,
        f"judge `{data['judge']}`" if data.get("judge") else None,
        f"{data['items']} prompts" if data.get("items") else None,
        f"{data['samples']} samples" if data.get("samples") else None,
    ]
    if any(facts):
        lines += ["; ".join(f for f in facts if f) + ".", ""]
    lines += [
        "Rates in % with 95% bootstrap CIs over prompts (random control: mean ± sd over seeds); Δ in "
        "percentage points against the reference with a paired-bootstrap CI and the exact McNemar p.",
        "",
    ]
    lines.append(markdown_tables(rows))
    if rows:
        target = plot_conditions(rows, assets / f"{prefix}-conditions.png", title=f"{folder.name}: conditions")
        result.figures.append(target)
        lines += ["", _image(target, result.path, "conditions with 95% CIs")]
    return lines + [""]


def _validation(folder: Path, assets: Path, prefix: str, result: ReportResult) -> list[str]:
    from moeguard.report.causal import validation_section

    lines, figures = validation_section(
        folder, _read_json(folder / "validate.json"), assets, prefix, lambda path, alt: _image(path, result.path, alt)
    )
    result.figures += figures
    return lines


def _drift(folder: Path, assets: Path, prefix: str, result: ReportResult) -> list[str]:
    from moeguard.report.plots import plot_drift

    rows = _read_csv(folder / "drift.csv", ("layer", "kl", "jaccard"))
    meta = _read_json(folder / "drift.json")
    layers = [int(r["layer"]) for r in rows]
    kl = [float(r["kl"]) for r in rows]
    jaccard = [float(r["jaccard"]) for r in rows]
    lines = [f"## Routing drift: `{folder}`", ""]
    if meta:
        parts = [
            f"{k} {meta[k]:.4g}"
            for k in ("mean_kl", "total_kl", "mean_jaccard")
            if isinstance(meta.get(k), (int, float))
        ]
        if parts:
            lines += [", ".join(parts) + (f" (T={meta['temperature']:g})" if "temperature" in meta else "") + ".", ""]
    lines += ["| layer | KL | top-k Jaccard |", "|---:|---:|---:|"]
    lines += [f"| {layer} | {k:.4g} | {j:.3f} |" for layer, k, j in zip(layers, kl, jaccard, strict=True)]
    target = plot_drift(layers, kl, jaccard, assets / f"{prefix}-drift.png", title=f"routing drift: {folder.name}")
    result.figures.append(target)
    return lines + ["", _image(target, result.path, "routing drift per layer"), ""]
