"""``moeguard validate`` and ``moeguard attack experts`` end to end on a tiny random model (files, shapes, JSON)."""

from __future__ import annotations

import json

import pytest

import moeguard.threads
from cli_helpers import run_cli
from moeguard.validation.run import ValidateSettings, run_validate


@pytest.fixture
def tiny_spec(tmp_path):
    path = tmp_path / "spec.json"
    path.write_text(json.dumps({"deactivate": [[1, 3], [0, 2], [1, 5]]}), encoding="utf-8")
    return path


def test_validate_run_folder(tiny_model_dir, tiny_spec, tmp_path, one_torch_thread):
    from moeguard.models import load_model

    model_dir = tiny_model_dir("olmoe")
    model, tokenizer = load_model(model_dir)
    settings = ValidateSettings(
        model=model_dir,
        spec=tiny_spec,
        benchmark="builtin:organism-harmful",
        limit=3,
        output=tmp_path / "v",
        random_sets=2,
        max_new_tokens=2,
        bootstrap=20,
        pairs="builtin:safety",
        max_pairs=4,
        resamples=3,
        splits=2,
    )
    result = run_validate(settings, progress=False, model=model, tokenizer=tokenizer)
    assert [p.dose for p in result.points] == [1, 2, 3]
    assert all(len(p.random_values) == 2 and p.p_value >= 1 / 3 for p in result.points)
    assert [(r["layer"], r["expert"]) for r in result.loo] == [(1, 3), (0, 2), (1, 5)]
    names = {p.name for p in result.files}
    assert {
        "dose_response.csv",
        "random_sets.csv",
        "loo.csv",
        "stability.csv",
        "samples.jsonl",
        "dose_response.png",
        "validate.json",
    } <= names
    meta = json.loads((tmp_path / "v" / "validate.json").read_text())
    assert meta["command"] == "validate" and meta["summary"]["stability"]["resamples"] == 3
    assert meta["ranking"][0] == [1, 3, "deactivate"]
    # baseline, 3 doses x (1 + 2 random), 3 leave-one-out specs (the full spec is dose 3): at most 13 generations
    assert result.generations <= 13
    samples = (tmp_path / "v" / "samples.jsonl").read_text().splitlines()
    assert len(samples) == 3 * result.generations


def test_validate_and_attack_cli(tiny_model_dir, tiny_spec, tmp_path, capsys, monkeypatch, one_torch_thread):
    applied: list[int] = []
    real = moeguard.threads.apply_threads
    monkeypatch.setattr(moeguard.threads, "apply_threads", lambda setting: applied.append(real(setting)) or applied[-1])
    model = tiny_model_dir("olmoe")
    quick = ["--limit", "2", "--random-sets", "1", "--doses", "3", "--no-loo", "--max-new-tokens", "2"]
    quick += ["--bootstrap", "10", "--threads", "1"]
    base = ["validate", model, "--spec", tiny_spec, "-b", "builtin:organism-harmful"]
    result = run_cli(capsys, *base, *quick, "-o", tmp_path / "v", "--json")
    assert result.code == 0, result.err
    assert applied == [1]
    summary = json.loads(result.out)
    assert [d["dose"] for d in summary["doses"]] == [3] and summary["loo"] is None
    again = run_cli(capsys, *base, "-o", tmp_path / "v")
    assert again.code == 2 and "not empty" in again.err
    table = run_cli(capsys, *base, *quick, "-o", tmp_path / "v2")  # the printed tables, not JSON
    assert table.code == 0, table.err
    start = json.loads((tmp_path / "v2" / "validate.json").read_text())["summary"]["beats_all_random_from_dose"]
    assert ("beats every random set from dose 3 on" if start == 3 else "does not beat every random set") in table.out
    attack = run_cli(
        capsys,
        "attack",
        "experts",
        model,
        "--search",
        "builtin:organism-harmful",
        "--search-limit",
        "2",
        "--heldout",
        "builtin:organism-handwritten",
        "--heldout-split",
        "harmful",
        "--heldout-limit",
        "2",
        "--max-experts",
        "1",
        "--control",
        "1",
        "--max-new-tokens",
        "2",
        "--heldout-max-new-tokens",
        "2",
        "--target",
        "0.0",
        "-o",
        tmp_path / "a",
        "--json",
        "--threads",
        "2",
    )
    assert attack.code == 0, attack.err
    assert applied[-1] == 2  # --threads was applied
    data = json.loads(attack.out)
    assert data["size"] <= 1 and data["candidates"] == 24  # 3 layers x 8 experts, no pruning
    assert (tmp_path / "a" / "spec.json").is_file() and (tmp_path / "a" / "attack.json").is_file()
    report = run_cli(capsys, "report", tmp_path / "v", tmp_path / "a", "-o", tmp_path / "r.md")
    assert report.code == 0, report.err
    page = (tmp_path / "r.md").read_text()
    assert "## Causal validation" in page and "## Expert-silencing attack" in page
