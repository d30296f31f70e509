"""Report sections of ``moeguard validate`` (``validate.json``) and ``moeguard attack experts`` (``attack.json``)
run folders: the dose–response table with p-values and its figure, leave-one-out attributions, selection
stability; the silencing search trajectory and the held-out comparison."""

from __future__ import annotations

import csv
import shutil
from collections.abc import Callable
from pathlib import Path

from moeguard.errors import MoeguardError


def _pct(value) -> str:
    if value is None or value != value:
        return "–"
    return f"{100 * float(value):.1f}"


def _summary(data: dict, path: Path, command: str) -> dict:
    summary = data.get("summary")
    if not isinstance(summary, dict):
        raise MoeguardError(f"{path} holds no summary; rerun 'moeguard {command}'")
    return summary


def validation_section(
    folder: Path, data: dict, assets: Path, prefix: str, image: Callable[[Path, str], str]
) -> tuple[list[str], list[Path]]:
    """Markdown lines and copied figures of a validate run folder (``data``: its ``validate.json``; ``image``
    renders a figure's markdown link)."""
    s = _summary(data, folder / "validate.json", "validate")
    settings = data.get("settings", {})
    lines = [f"## Causal validation: `{folder}`", ""]
    lines += [
        f"model `{data.get('model')}`; spec `{data.get('spec_path')}` ({s['experts']} experts, ranked by "
        f"{data.get('ranking_source', 'the spec order')}); metric `{s['metric']}` on `{settings.get('benchmark')}` "
        f"({s['prompts']} prompts, judge `{data.get('judge')}`); {settings.get('random_sets')} random sets matched per "
        f"layer per dose; direction `{s['direction']}`.",
        "",
        f"Baseline {_pct(s['baseline'])}%, full spec {_pct(s['full'])}% (effect {_pct(s['full_effect'])} points). "
        f"p: set-level permutation p-value of the selection against the random sets (smallest possible "
        f"{s['min_p_value']:.3g}); CI: 95% bootstrap over prompts.",
        "",
        "| dose | selected (%) | 95% CI | random mean ± sd (%) | random min–max (%) | p | beats every random set |",
        "|---:|---:|---:|---:|---:|---:|---|",
    ]
    for d in s["doses"]:
        lines.append(
            f"| {d['dose']} | {_pct(d['selected'])} | {_pct(d['ci'][0])}–{_pct(d['ci'][1])} | "
            f"{_pct(d['random_mean'])} ± {_pct(d['random_sd'])} | {_pct(d['random_min'])}–{_pct(d['random_max'])} | "
            f"{d['p_value']:.3g} | {'yes' if d['beats_all_random'] else 'no'} |"
        )
    figures = []
    if (folder / "dose_response.png").is_file():
        assets.mkdir(parents=True, exist_ok=True)
        target = assets / f"{prefix}-dose-response.png"
        shutil.copyfile(folder / "dose_response.png", target)
        figures.append(target)
        lines += ["", image(target, "dose-response: selection vs matched random sets")]
    loo = s.get("loo")
    if loo and (folder / "loo.csv").is_file():
        with open(folder / "loo.csv", newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        ratio = f", ratio {loo['ratio']:.2f}" if loo.get("ratio") is not None else ""
        lines += [
            "",
            "Leave-one-out: the effect lost when each expert is dropped from the spec (points; paired-bootstrap 95% "
            f"CI). Sum {_pct(loo['attribution_sum'])} vs full effect {_pct(loo['effect'])} (gap "
            f"{_pct(loo['gap'])}{ratio}).",
            "",
            "| rank | layer | expert | role | without (%) | attribution | 95% CI |",
            "|---:|---:|---:|---|---:|---:|---:|",
        ]
        lines += [
            f"| {r['rank']} | {r['layer']} | {r['expert']} | {r['role']} | {_pct(float(r['without']))} | "
            f"{_pct(float(r['attribution']))} | {_pct(float(r['ci_low']))}–{_pct(float(r['ci_high']))} |"
            for r in rows
        ]
    st = s.get("stability")
    if st:
        rule = st["rule"]
        lines += [
            "",
            f"Selection stability on {st['distinct_pairs']} distinct pairs (rule: {rule['n_activate']} activated, "
            f"{rule['n_deactivate']} deactivated, reverse {rule['reverse']}): the spec vs the full-data selection "
            f"Jaccard {st['spec_vs_full_jaccard']:.2f}; {st['resamples']} cluster resamples: Jaccard vs full mean "
            f"{_num(st['resample_jaccard_mean'])}, min {_num(st['resample_jaccard_min'])}; {st['splits']} splits into "
            f"disjoint halves: Jaccard between halves mean {_num(st['half_jaccard_mean'])}, min "
            f"{_num(st['half_jaccard_min'])}.",
        ]
    return lines + [""], figures


def _num(value) -> str:
    return "–" if value is None else f"{value:.2f}"


def attack_section(folder: Path, data: dict) -> list[str]:
    """Markdown lines of an attack-experts run folder (``data``: its ``attack.json``)."""
    s = _summary(data, folder / "attack.json", "attack experts")
    settings = data.get("settings", {})
    experts = ", ".join(f"{la}:{e}" for la, e in s["experts"]) or "(none)"
    how = "greedy" if s["beam"] == 1 else f"beam {s['beam']}"
    lines = [f"## Expert-silencing attack: `{folder}`", ""]
    lines += [
        f"model `{data.get('model')}`; search `{settings.get('search')}` ({s['search_prompts']} harmful prompts), "
        f"held-out `{settings.get('heldout')}` ({s['heldout_prompts']}); {how} "
        f"over {s['candidates']} candidates{' (pruned by |risk_diff|)' if s['pruned_by_ranking'] else ''}, "
        f"{s['evaluations']} sets scored; target refusal ≤ {_pct(s['target'])}%.",
        "",
        f"Found {s['size']} expert(s) ({experts}): search refusal {_pct(s['search_baseline'])}% → "
        f"{_pct(s['search_refusal'])}% ({'target reached' if s['reached'] else 'target not reached'}).",
        "",
        "| search step | experts | search refusal (%) |",
        "|---:|---|---:|",
    ]
    for step in data.get("steps", []):
        lines.append(f"| {step['size']} | {' '.join(f'{a}:{b}' for a, b in step['experts'])} | {_pct(step['score'])} |")
    lines += [
        "",
        "Held-out refusal (%, 95% bootstrap CI over prompts):",
        "",
        "| condition | experts | refusal (%) | 95% CI |",
        "|---|---:|---:|---:|",
    ]
    for row in data.get("heldout", []):
        lines.append(
            f"| {row['condition']} | {row['experts']} | {_pct(row['refusal'])} | "
            f"{_pct(row['ci_low'])}–{_pct(row['ci_high'])} |"
        )
    if s.get("control_p_value") is not None:
        lines += [
            "",
            f"Random sets of the found set's shape: {_pct(s['control_mean'])} ± {_pct(s['control_sd'])}% "
            f"(set-level permutation p = {s['control_p_value']:.3g}).",
        ]
    if s.get("compare"):
        c = s["compare"]
        lines += [
            "",
            f"Compared with `{c['spec']}`: {c['experts']} experts (search refusal {_pct(c['search_refusal'])}%, "
            f"held-out {_pct(c['heldout_refusal'])}%); the found set is "
            f"{'no larger' if c['found_not_larger'] else 'larger'}.",
        ]
    return lines + [""]
