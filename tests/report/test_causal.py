"""Report sections of validate and attack-experts folders, from hand-written run files (no model)."""

from __future__ import annotations

import json

from moeguard.report.page import build_report


def _validate_folder(folder):
    folder.mkdir()
    summary = {
        "metric": "refusal",
        "direction": "lower",
        "baseline": 0.95,
        "full": 0.0,
        "full_effect": -0.95,
        "experts": 2,
        "prompts": 40,
        "min_p_value": 0.05,
        "doses": [
            {
                "dose": 1,
                "selected": 0.5,
                "ci": [0.35, 0.65],
                "random_mean": 0.9,
                "random_sd": 0.05,
                "random_min": 0.8,
                "random_max": 0.95,
                "p_value": 0.05,
                "beats_all_random": True,
            },
            {
                "dose": 2,
                "selected": 0.0,
                "ci": [0.0, 0.0],
                "random_mean": 0.85,
                "random_sd": 0.1,
                "random_min": 0.0,
                "random_max": 0.95,
                "p_value": 0.1,
                "beats_all_random": False,
            },
        ],
        "loo": {"effect": -0.95, "attribution_sum": -0.5, "gap": 0.45, "ratio": 0.526},
        "stability": None,
    }
    data = {
        "model": "m",
        "spec_path": "s.json",
        "ranking_source": "the spec's order",
        "judge": "refusal",
        "settings": {"benchmark": "b", "random_sets": 19},
        "summary": summary,
    }
    (folder / "validate.json").write_text(json.dumps(data), encoding="utf-8")
    (folder / "loo.csv").write_text(
        "rank,layer,expert,role,without,attribution,ci_low,ci_high\n"
        "1,2,14,deactivate,0.5,-0.5,-0.6,-0.4\n2,3,0,deactivate,0.0,0.0,0.0,0.0\n",
        encoding="utf-8",
    )


def _attack_folder(folder):
    folder.mkdir()
    summary = {
        "experts": [[1, 8], [2, 14]],
        "size": 2,
        "search_prompts": 24,
        "heldout_prompts": 112,
        "beam": 1,
        "candidates": 16,
        "pruned_by_ranking": True,
        "evaluations": 31,
        "target": 0.1,
        "reached": True,
        "search_baseline": 1.0,
        "search_refusal": 0.05,
        "control_mean": 0.8,
        "control_sd": 0.01,
        "control_p_value": 1 / 6,
        "compare": {
            "spec": "unsafe.json",
            "experts": 8,
            "search_refusal": 0.0,
            "heldout_refusal": 0.0,
            "found_not_larger": True,
        },
    }
    data = {
        "model": "m",
        "settings": {"search": "s", "heldout": "h"},
        "summary": summary,
        "steps": [
            {"size": 1, "experts": [[1, 8]], "score": 0.8, "evaluated": 16},
            {"size": 2, "experts": [[1, 8], [2, 14]], "score": 0.05, "evaluated": 15},
        ],
        "heldout": [
            {"condition": "baseline", "experts": 0, "refusal": 0.82, "ci_low": 0.75, "ci_high": 0.88},
            {"condition": "found", "experts": 2, "refusal": 0.01, "ci_low": 0.0, "ci_high": 0.03},
        ],
    }
    (folder / "attack.json").write_text(json.dumps(data), encoding="utf-8")


def test_validate_and_attack_sections(tmp_path):
    _validate_folder(tmp_path / "val")
    _attack_folder(tmp_path / "att")
    result = build_report([tmp_path / "val", tmp_path / "att"], tmp_path / "report.md")
    page = (tmp_path / "report.md").read_text()
    assert result.found == {str(tmp_path / "val"): ["validate"], str(tmp_path / "att"): ["attack"]}
    assert "| 1 | 50.0 | 35.0–65.0 | 90.0 ± 5.0 | 80.0–95.0 | 0.05 | yes |" in page
    assert "| 2 | 0.0 | 0.0–0.0 | 85.0 ± 10.0 | 0.0–95.0 | 0.1 | no |" in page
    assert "Sum -50.0 vs full effect -95.0 (gap 45.0, ratio 0.53)" in page
    assert "| 2 | 1:8 2:14 | 5.0 |" in page
    assert "| found | 2 | 1.0 | 0.0–3.0 |" in page
    assert "8 experts" in page and "no larger" in page and "p = 0.167" in page
