"""``moeguard detect``: SteerMoE expert detection on paired conversations → scores, spec and heatmap."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from moeguard.commands import MODEL_HELP, TrustOption

PAIRS_HELP = (
    "Pairs: a .jsonl/.csv file (messages_a, messages_b[, target_a, target_b]), builtin:NAME "
    "(safety, digits-vs-words, faithfulness) or a hub dataset NAME[:split]."
)
OUTPUT_HELP = "Folder for experts.csv, spec.json, heatmap.png and meta.json."
ACTIVATE_HELP = "Experts to activate: largest risk_diff > 0, at most top-k per layer."
DEACTIVATE_HELP = "Experts to deactivate: most negative risk_diff."
REVERSE_HELP = "Flip the signs first: steer towards side B (e.g. unsafe)."
STABILITY_HELP = "Keep only experts selected in at least this share of bootstrap resamples."
MAX_Q_HELP = "Keep only experts with a Benjamini-Hochberg q-value at most this."
BOOTSTRAP_HELP = "Poisson-bootstrap resamples over pairs (0: no stability)."


def detect(
    model: Annotated[str, typer.Argument(help=MODEL_HELP)],
    pairs: Annotated[str, typer.Option("--pairs", help=PAIRS_HELP)],
    output: Annotated[Path, typer.Option("--output", "-o", help=OUTPUT_HELP)],
    activate: Annotated[int, typer.Option("--activate", min=0, help=ACTIVATE_HELP)] = 5,
    deactivate: Annotated[int, typer.Option("--deactivate", min=0, help=DEACTIVATE_HELP)] = 0,
    reverse: Annotated[bool, typer.Option("--reverse", help=REVERSE_HELP)] = False,
    min_stability: Annotated[
        float | None, typer.Option("--min-stability", min=0.0, max=1.0, help=STABILITY_HELP)
    ] = None,
    max_q: Annotated[float | None, typer.Option("--max-q", min=0.0, max=1.0, help=MAX_Q_HELP)] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Conversations per forward.")] = 8,
    bootstrap: Annotated[int, typer.Option("--bootstrap", min=0, help=BOOTSTRAP_HELP)] = 100,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Bootstrap (and built-in pair set) seed.")] = 0,
    max_pairs: Annotated[int | None, typer.Option("--max-pairs", min=1, help="First N pairs only.")] = None,
    trust_remote_code: TrustOption = False,
) -> None:
    """Find experts whose routing separates side A from side B of paired conversations (SteerMoE).

    Writes experts.csv (all experts by |risk_diff|, with p/q-values and bootstrap stability),
    spec.json (for 'moeguard generate --steer'), heatmap.png and meta.json into OUTPUT.
    """
    from rich.console import Console

    from moeguard.adapters import inspect_moe
    from moeguard.artifacts import run_metadata, sha256_of, write_csv_atomic, write_json_atomic
    from moeguard.data import read_pairs
    from moeguard.detect import detect_experts, select_experts
    from moeguard.errors import MoeguardError
    from moeguard.models import load_model
    from moeguard.report import plot_risk_heatmap, top_experts_table

    if min_stability is not None and bootstrap == 0:
        raise MoeguardError("--min-stability needs bootstrap resamples; drop it or set --bootstrap >= 1")
    if output.exists() and not output.is_dir():
        raise MoeguardError(f"--output {output} is a file; pass a folder for the detection artifacts")
    records = read_pairs(pairs, max_pairs=max_pairs, seed=seed)
    loaded, tokenizer = load_model(model, trust_remote_code=trust_remote_code)
    moe = inspect_moe(loaded)
    result = detect_experts(
        moe, tokenizer, records, batch_size=batch_size, bootstrap=bootstrap, seed=seed, model_name=model,
        progress=True,
    )
    spec = select_experts(
        result, activate, deactivate, reverse=reverse, min_stability=min_stability, max_q=max_q
    )
    spec.validate(moe)
    stability = result.stability(activate, deactivate, reverse=reverse)

    columns = ["layer", "expert", "rate_a", "rate_b", "risk_diff", "p_value", "q_value", "stability"]
    rows = [
        [row[c] if not (c == "stability" and row[c] is None) else "" for c in columns]
        for row in result.rows(stability)
    ]
    written = [write_csv_atomic(output / "experts.csv", columns, rows), spec.save(output / "spec.json")]
    written.append(plot_risk_heatmap(result, output / "heatmap.png", spec=spec, title=f"{model}: {pairs}"))
    source = Path(pairs).expanduser()
    meta = run_metadata(
        model,
        command="detect",
        pairs_source=pairs,
        data_sha256=result.data_sha256,
        pairs_file_sha256=sha256_of(source.read_bytes()) if source.is_file() else None,
        pairs=result.pairs,
        tokens_a=result.tokens_a,
        tokens_b=result.tokens_b,
        seed=seed,
        bootstrap=bootstrap,
        batch_size=batch_size,
        family=moe.family,
        layers=result.layers,
        num_experts=result.num_experts,
        top_k=result.top_k,
        selection={
            "activate": activate,
            "deactivate": deactivate,
            "reverse": reverse,
            "min_stability": min_stability,
            "max_q": max_q,
        },
        selected={"activate": len(spec.activate), "deactivate": len(spec.deactivate)},
    )
    written.append(write_json_atomic(output / "meta.json", meta))

    err = Console(stderr=True)
    if len(spec.activate) < activate or len(spec.deactivate) < deactivate:
        err.print(
            f"note: selected {len(spec.activate)}/{activate} to activate and "
            f"{len(spec.deactivate)}/{deactivate} to deactivate; too few experts qualify "
            "(sign, per-layer limit, --max-q, --min-stability)"
        )
    Console().print(top_experts_table(result, spec, stability))
    for path in written:
        print(path)


def register(app: typer.Typer) -> None:
    app.command()(detect)
