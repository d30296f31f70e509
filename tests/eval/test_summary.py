"""Summary rows from hand-made records: rates, control mean ± sd over seeds, references and paired tests."""

from __future__ import annotations

import pytest

from moeguard.eval.stats import bootstrap_ci, mcnemar_exact, paired_bootstrap
from moeguard.eval.summary import Cell, markdown_tables, rows_from_json, summarise


def rec(condition, index, refusal, seed=0, jailbreak="none", control=False):
    return {
        "condition": condition,
        "jailbreak": jailbreak,
        "seed": seed,
        "index": index,
        "control": control,
        "metrics": {"refusal": refusal},
    }


BASE = [1, 1, 1, 1, 1, 1, 1, 0]
STEERED = [0, 0, 0, 0, 0, 1, 1, 0]
CONTROL = {0: [1, 1, 1, 1, 1, 1, 0, 0], 1: [1, 1, 1, 1, 1, 1, 1, 1]}
CELLS = [
    Cell("baseline"),
    Cell("spec", steering="spec", experts=3),
    Cell("random:spec", steering="spec", control=True, experts=3),
    Cell("baseline", jailbreak="jb"),
]


@pytest.fixture
def rows():
    records = [rec("baseline", i, v) for i, v in enumerate(BASE)]
    records += [rec("spec", i, v) for i, v in enumerate(STEERED)]
    records += [
        rec("random:spec", i, v, seed=s, control=True) for s, vals in CONTROL.items() for i, v in enumerate(vals)
    ]
    records += [rec("baseline", i, 0, jailbreak="jb") for i in range(8)]
    return summarise(records, CELLS, resamples=500, seed=3)


def test_rates_cis_and_the_plain_baseline_has_no_reference(rows):
    base, spec, control, jailbroken = rows
    assert (base.value, base.n, base.reference, base.mcnemar) == (7 / 8, 8, None, None)
    assert (base.ci_low, base.ci_high) == bootstrap_ci(BASE, 500, seed=3)
    assert spec.value == 2 / 8 and spec.reference == "baseline"


def test_steered_condition_is_paired_against_the_baseline(rows):
    spec = rows[1]
    # baseline 1 -> steered 0 on prompts 0..4 (b = 5); never 0 -> 1 (c = 0)
    assert (spec.mcnemar.b, spec.mcnemar.c) == (5, 0) and spec.mcnemar.p == mcnemar_exact(5, 0) == 0.0625
    paired = paired_bootstrap(BASE, STEERED, 500, seed=3)
    assert (spec.diff, spec.diff_ci_low, spec.diff_ci_high) == (paired.diff, paired.low, paired.high)
    assert spec.diff == pytest.approx(-5 / 8)


def test_control_is_mean_and_sd_over_seeds_with_a_ci_over_prompt_means(rows):
    control = rows[2]
    assert control.seeds == 2 and control.seed_values == [6 / 8, 1.0]
    assert control.value == pytest.approx(7 / 8) and control.sd == pytest.approx(0.1767767, abs=1e-6)
    prompt_means = [(a + b) / 2 for a, b in zip(CONTROL[0], CONTROL[1], strict=True)]
    assert (control.ci_low, control.ci_high) == bootstrap_ci(prompt_means, 500, seed=3)
    assert control.mcnemar is None and [(m.b, m.c) for m in control.mcnemar_seeds] == [(1, 0), (0, 1)]
    assert control.diff == pytest.approx(0.0)


def test_a_jailbreak_baseline_is_compared_with_the_plain_baseline(rows):
    jailbroken = rows[3]
    assert jailbroken.reference == "baseline" and (jailbroken.mcnemar.b, jailbroken.mcnemar.c) == (7, 0)
    assert jailbroken.cell.name == "baseline + jb"


def test_rows_survive_json_and_render(rows):
    again = rows_from_json({"rows": [r.to_dict() for r in rows]})
    assert [r.to_dict() for r in again] == [r.to_dict() for r in rows]
    table = markdown_tables(rows)
    assert "| random:spec | 3 | 8 | 87.5 ± 17.7 [" in table and "p=0.062" in table
