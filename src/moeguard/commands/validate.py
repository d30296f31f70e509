"""``moeguard validate`` (dose–response, leave-one-out, stability of a spec) and ``moeguard attack experts``
(expert-silencing red-team search), DESIGN §1.6."""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from moeguard.commands import (
    DeviceOption,
    Dtype,
    DtypeOption,
    ForceOption,
    JsonOption,
    ModelArgument,
    ThreadsOption,
    TrustOption,
    int_list,
)
from moeguard.commands.eval import BENCHMARK_HELP, JUDGE_HELP


class Metric(str, Enum):
    """The behaviour metric a validation measures (outcomes of ``moeguard eval``)."""

    refusal = "refusal"
    harmful = "harmful"
    degenerate = "degenerate"
    over_refusal = "over_refusal"
    faithful = "faithful"


class Direction(str, Enum):
    """Which way "beats random" points."""

    auto = "auto"
    decrease = "lower"
    increase = "higher"


def validate_command(
    model: ModelArgument,
    spec: Annotated[Path, typer.Option("--spec", help="The spec to validate: spec.json or a detect run folder.")],
    benchmark: Annotated[str, typer.Option("--benchmark", "-b", help=BENCHMARK_HELP)],
    output: Annotated[Path, typer.Option("--output", "-o", help="Run folder (CSV, PNG, JSON, samples).")],
    split: Annotated[str | None, typer.Option("--split", help="A benchmark part or a label filter.")] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="First N items only.")] = None,
    judge: Annotated[str, typer.Option("--judge", help=JUDGE_HELP)] = "refusal",
    metric: Annotated[Metric, typer.Option("--metric", help="The behaviour measured at every dose.")] = Metric.refusal,
    doses: Annotated[
        str | None, typer.Option("--doses", help="Comma-separated doses (default 1,2,4,... and the spec's size).")
    ] = None,
    random_sets: Annotated[
        int, typer.Option("--random-sets", min=1, help="Random rankings matched per layer (smallest p: 1/(N+1)).")
    ] = 19,
    direction: Annotated[
        Direction, typer.Option("--direction", help="Which way the selection should beat random (auto: its effect).")
    ] = Direction.auto,
    loo: Annotated[bool, typer.Option("--loo/--no-loo", help="Leave-one-out attribution of every expert.")] = True,
    pairs: Annotated[
        str | None, typer.Option("--pairs", help="Pairs for selection stability (pair file or builtin:NAME).")
    ] = None,
    max_pairs: Annotated[int, typer.Option("--max-pairs", min=1, help="Pairs read for stability.")] = 200,
    resamples: Annotated[int, typer.Option("--resamples", min=0, help="Cluster resamples of the pairs (seeds).")] = 20,
    splits: Annotated[int, typer.Option("--splits", min=0, help="Random splits into disjoint halves.")] = 10,
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens", min=1, help="Tokens generated per reply.")] = 40,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Prompts per generate call.")] = 40,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Random-set, resampling and bootstrap seed.")] = 0,
    bootstrap: Annotated[int, typer.Option("--bootstrap", min=1, help="Bootstrap resamples for the CIs.")] = 1000,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace a previous validate run in --output.")
    ] = False,
    force: ForceOption = False,
    trust_remote_code: TrustOption = False,
    device: DeviceOption = "auto",
    dtype: DtypeOption = Dtype.auto,
    threads: ThreadsOption = "auto",
    json: JsonOption = False,
) -> None:
    """Validate a spec causally: steer its top 1, 2, 4, ... experts and, at each dose, random expert sets matched
    per layer; the metric with 95% CIs, a permutation p-value of "selected beats random" and a plot; leave-one-out
    attribution; with --pairs, stability of the selection across resamples and disjoint halves of the pairs."""
    from moeguard.commands import print_json
    from moeguard.validation.run import ValidateSettings, run_validate

    settings = ValidateSettings(
        model=model,
        spec=spec,
        benchmark=benchmark,
        output=output,
        split=split,
        limit=limit,
        judge=judge,
        metric=metric.value,
        doses=int_list(doses, "--doses", "1,2,4,8"),
        random_sets=random_sets,
        direction=direction.value,
        loo=loo,
        pairs=pairs,
        max_pairs=max_pairs,
        resamples=resamples,
        splits=splits,
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
        seed=seed,
        bootstrap=bootstrap,
        overwrite=overwrite,
        force=force,
        trust_remote_code=trust_remote_code,
        device=device,
        dtype=dtype.value,
    )
    result = run_validate(settings, progress=not json)
    if json:
        print_json({"output": str(result.output), **result.summary})
        return
    _print_validate(result, model)


def _pct(value: float) -> str:
    return f"{100 * value:.1f}"


def _print_validate(result, model: str) -> None:
    from rich.console import Console
    from rich.table import Table

    s = result.summary
    console = Console(width=None if sys.stdout.isatty() else 132)
    table = Table(
        title=f"{model}: {s['metric']} (%) by dose; baseline {_pct(s['baseline'])}, direction {s['direction']}"
    )
    for column in ("dose", "selected", "95% CI", "random mean ± sd", "random min–max", "p"):
        table.add_column(column, justify="right")
    for d in s["doses"]:
        table.add_row(
            str(d["dose"]),
            _pct(d["selected"]),
            f"{_pct(d['ci'][0])}–{_pct(d['ci'][1])}",
            f"{_pct(d['random_mean'])} ± {_pct(d['random_sd'])}",
            f"{_pct(d['random_min'])}–{_pct(d['random_max'])}",
            f"{d['p_value']:.3g}",
        )
    console.print(table)
    start = s["beats_all_random_from_dose"]
    console.print(
        f"beats every random set from dose {start} on" if start else "does not beat every random set at the full size"
    )
    if s["loo"]:
        loo = s["loo"]
        console.print(
            f"leave-one-out: attributions sum to {_pct(loo['attribution_sum'])} points, full effect "
            f"{_pct(loo['effect'])} points (gap {_pct(loo['gap'])})"
        )
    if s["stability"]:
        st = s["stability"]
        console.print(
            f"stability: Jaccard vs full selection over {st['resamples']} resamples "
            f"mean {st['resample_jaccard_mean'] or 0:.2f}; between disjoint halves ({st['splits']} splits) "
            f"mean {st['half_jaccard_mean'] or 0:.2f}"
        )
    for path in result.files:
        print(path)


def attack_experts(
    model: ModelArgument,
    search: Annotated[str, typer.Option("--search", help="Harmful prompts to search on. " + BENCHMARK_HELP)],
    heldout: Annotated[str, typer.Option("--heldout", help="Held-out harmful prompts (disjoint from --search).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Run folder (attack.json, CSVs, spec.json).")],
    search_split: Annotated[str | None, typer.Option("--search-split", help="A part of --search.")] = None,
    heldout_split: Annotated[str | None, typer.Option("--heldout-split", help="A part of --heldout.")] = None,
    search_limit: Annotated[int | None, typer.Option("--search-limit", min=1, help="First N search items.")] = None,
    heldout_limit: Annotated[int | None, typer.Option("--heldout-limit", min=1, help="First N held-out items.")] = None,
    target: Annotated[float, typer.Option("--target", help="Stop when search refusal is at or below this.")] = 0.1,
    max_experts: Annotated[int, typer.Option("--max-experts", min=1, help="Largest set tried.")] = 16,
    beam: Annotated[int, typer.Option("--beam", min=1, help="Sets kept per step (1: greedy).")] = 1,
    candidates: Annotated[
        int | None, typer.Option("--candidates", min=1, help="Keep the N experts of largest |risk_diff| (--ranking).")
    ] = None,
    ranking: Annotated[
        Path | None, typer.Option("--ranking", help="A detect run folder (experts.csv) ordering the candidates.")
    ] = None,
    compare: Annotated[
        Path | None, typer.Option("--compare", help="A spec to compare with (e.g. the risk-difference selection).")
    ] = None,
    control: Annotated[int, typer.Option("--control", min=0, help="Random sets of the found set's shape.")] = 5,
    judge: Annotated[str, typer.Option("--judge", help=JUDGE_HELP)] = "refusal",
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens", min=1, help="Tokens per search reply.")] = 16,
    heldout_max_new_tokens: Annotated[
        int, typer.Option("--heldout-max-new-tokens", min=1, help="Tokens per held-out reply.")
    ] = 40,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Prompts per generate call.")] = 64,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Control and bootstrap seed.")] = 0,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace a previous attack run in --output.")] = False,
    force: ForceOption = False,
    trust_remote_code: TrustOption = False,
    device: DeviceOption = "auto",
    dtype: DtypeOption = Dtype.auto,
    threads: ThreadsOption = "auto",
    json: JsonOption = False,
) -> None:
    """Search for the smallest set of experts whose deactivation drops refusal to --target on --search (greedy, or
    beam with --beam), then measure it on --heldout against random sets of its shape (and --compare)."""
    from moeguard.commands import print_json
    from moeguard.validation.silencing import AttackSettings, run_attack

    settings = AttackSettings(
        model=model,
        search=search,
        heldout=heldout,
        output=output,
        search_split=search_split,
        heldout_split=heldout_split,
        search_limit=search_limit,
        heldout_limit=heldout_limit,
        target=target,
        max_experts=max_experts,
        beam=beam,
        candidates=candidates,
        ranking=ranking,
        compare=compare,
        control=control,
        judge=judge,
        max_new_tokens=max_new_tokens,
        heldout_max_new_tokens=heldout_max_new_tokens,
        batch_size=batch_size,
        seed=seed,
        overwrite=overwrite,
        force=force,
        trust_remote_code=trust_remote_code,
        device=device,
        dtype=dtype.value,
    )
    result = run_attack(settings, progress=not json)
    s = result.summary
    if json:
        print_json({"output": str(result.output), **s})
        return
    experts = " ".join(f"{la}:{e}" for la, e in s["experts"]) or "(none)"
    print(
        f"found {s['size']} expert(s): {experts} ({'reached' if s['reached'] else 'did not reach'} target "
        f"{_pct(s['target'])}% on {s['search_prompts']} search prompts: {_pct(s['search_refusal'])}%)"
    )
    line = f"held-out refusal: baseline {_pct(s['heldout_baseline'])}%, found set {_pct(s['heldout_refusal'])}%"
    if s["control_mean"] == s["control_mean"]:  # not NaN
        line += f", random sets {_pct(s['control_mean'])} ± {_pct(s['control_sd'])}% (p={s['control_p_value']:.3g})"
    print(line)
    if s["compare"]:
        c = s["compare"]
        print(f"compare {c['spec']}: {c['experts']} expert(s), held-out refusal {_pct(c['heldout_refusal'])}%")
    for path in result.files:
        print(path)


def register(app: typer.Typer) -> None:
    from moeguard.commands.safemoe import attack_app

    app.command("validate")(validate_command)
    attack_app.command("experts")(attack_experts)
