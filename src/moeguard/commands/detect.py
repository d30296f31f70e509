"""``moeguard detect``: SteerMoE expert detection on paired conversations → scores, spec and heatmap."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from moeguard.commands import (
    MODEL_HELP,
    AllowUnregisteredOption,
    BackendName,
    BackendOption,
    DeviceOption,
    Dtype,
    DtypeOption,
    JsonOption,
    ThreadsOption,
    TrustOption,
    load_engine,
    print_json,
)

PAIRS_HELP = (
    "Pairs: a .jsonl/.csv file (messages_a, messages_b[, target_a, target_b]), builtin:NAME "
    "(safety, digits-vs-words, faithfulness) or a hub dataset NAME[:split]."
)
OUTPUT_HELP = "Folder for experts.csv, spec.json, heatmap.png and meta.json."
ACTIVATE_HELP = "Experts to activate: largest risk_diff > 0, at most top-k per layer."
DEACTIVATE_HELP = "Experts to deactivate: most negative risk_diff."
REVERSE_HELP = "Flip the signs first: steer towards side B (e.g. unsafe)."
STABILITY_HELP = "Keep only experts selected in at least this share of bootstrap resamples."
MAX_Q_HELP = "Keep only experts with a Benjamini-Hochberg q-value (of --test) at most this."
BOOTSTRAP_HELP = "Poisson-bootstrap resamples over distinct pairs (0: no stability, no CIs)."
TEST_HELP = (
    "Test behind --max-q and the printed q: pair (sign-flip permutation test over distinct pairs) or "
    "token (two-proportion z-test on token counts; optimistic, tokens of a pair are correlated)."
)


class Test(str, Enum):
    """The test behind --max-q (see moeguard.detect.TESTS)."""

    pair = "pair"
    token = "token"


PERMUTATIONS_HELP = "Random sign flips of the pair test when there are more than 16 distinct pairs (else exact)."


def detect(
    model: Annotated[
        str | None,
        typer.Argument(help=MODEL_HELP + " Not needed with --from-capture.", metavar="MODEL", show_default=False),
    ] = None,
    pairs: Annotated[str | None, typer.Option("--pairs", help=PAIRS_HELP)] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help=OUTPUT_HELP)] = None,
    from_capture: Annotated[
        Path | None,
        typer.Option("--from-capture", help="A 'moeguard capture --pairs' folder: detect from it, no model run."),
    ] = None,
    activate: Annotated[int, typer.Option("--activate", min=0, help=ACTIVATE_HELP)] = 5,
    deactivate: Annotated[int, typer.Option("--deactivate", min=0, help=DEACTIVATE_HELP)] = 0,
    reverse: Annotated[bool, typer.Option("--reverse", help=REVERSE_HELP)] = False,
    min_stability: Annotated[
        float | None, typer.Option("--min-stability", min=0.0, max=1.0, help=STABILITY_HELP)
    ] = None,
    max_q: Annotated[float | None, typer.Option("--max-q", min=0.0, max=1.0, help=MAX_Q_HELP)] = None,
    test: Annotated[Test, typer.Option("--test", help=TEST_HELP)] = Test.pair,
    permutations: Annotated[int, typer.Option("--permutations", min=1, help=PERMUTATIONS_HELP)] = 10_000,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Conversations per forward.")] = 8,
    bootstrap: Annotated[int, typer.Option("--bootstrap", min=0, help=BOOTSTRAP_HELP)] = 100,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Bootstrap (and built-in pair set) seed.")] = 0,
    max_pairs: Annotated[int | None, typer.Option("--max-pairs", min=1, help="First N pairs only.")] = None,
    trust_remote_code: TrustOption = False,
    device: DeviceOption = "auto",
    dtype: DtypeOption = Dtype.auto,
    json: JsonOption = False,
    allow_unregistered: AllowUnregisteredOption = False,
    backend: BackendOption = BackendName.hf,
    threads: ThreadsOption = "auto",
) -> None:
    """Find experts whose routing separates side A from side B of paired conversations (SteerMoE).

    Writes experts.csv (all experts by |risk_diff|, with token- and pair-level p/q-values, a 95% bootstrap
    CI of risk_diff and bootstrap stability), spec.json (for 'moeguard generate --steer'), heatmap.png and
    meta.json into OUTPUT.
    """
    from rich.console import Console

    from moeguard.artifacts import sha256_of
    from moeguard.detect import check_run, detect_from_trace
    from moeguard.detect_run import DetectionRun, Selection
    from moeguard.errors import MoeguardError
    from moeguard.outputs import check_output_folder
    from moeguard.report import top_experts_table

    if output is None:
        raise MoeguardError("missing option --output: the folder for the detection artifacts")
    check_output_folder(output)
    selection = Selection(activate, deactivate, reverse, min_stability, max_q, test.value)
    selection.check(bootstrap)
    check_run(batch_size, bootstrap, seed, permutations)
    if from_capture is not None:
        if pairs is not None:
            raise MoeguardError("--from-capture replays recorded pairs; drop --pairs (or drop --from-capture)")
        from moeguard.routing.trace import RoutingTrace

        trace = RoutingTrace.load(from_capture)
        source_model = trace.meta.get("model")
        if model is not None and source_model and model != source_model:
            raise MoeguardError(f"the capture was recorded on {source_model}, not {model}; pass the same model")
        result = detect_from_trace(
            trace, bootstrap=bootstrap, seed=seed, model_name=model or source_model, permutations=permutations
        )
        source = f"capture:{from_capture}"
        family = trace.meta.get("family")
    else:
        if model is None or pairs is None:
            raise MoeguardError("give MODEL and --pairs FILE (or --from-capture DIR)")
        from moeguard.data import read_pairs

        records = read_pairs(pairs, max_pairs=max_pairs, seed=seed)
        loaded = load_engine(backend, model, trust_remote_code, device, dtype, allow_unregistered)
        moe = loaded.shape
        result = loaded.detect(
            records, bootstrap=bootstrap, seed=seed, batch_size=batch_size, progress=True, permutations=permutations
        )
        source, family = pairs, moe.family
    run = DetectionRun.from_result(result, selection)
    if from_capture is None:
        run.spec.validate(moe)
    pairs_file = Path(pairs).expanduser() if pairs is not None else None
    written = run.write(
        output,
        title=f"{result.model}: {source}",
        metadata={
            "pairs_source": source,
            "pairs_file_sha256": sha256_of(pairs_file.read_bytes())
            if pairs_file is not None and pairs_file.is_file()
            else None,
            "batch_size": batch_size,
            "family": family,
            "backend": backend.value,
        },
    )
    if run.short:
        Console(stderr=True).print(
            f"note: selected {len(run.spec.activate)}/{activate} to activate and "
            f"{len(run.spec.deactivate)}/{deactivate} to deactivate; too few experts qualify "
            "(sign, per-layer limit, --max-q, --min-stability)"
        )
    if json:
        print_json(
            {
                "files": [str(p) for p in written],
                "spec": run.spec.to_dict(),
                "pairs": result.pairs,
                "effective_pairs": result.effective_pairs,
                "test": test.value,
                "top": run.result.rows(run.stability)[:10],
            }
        )
        return
    Console().print(top_experts_table(result, run.spec, run.stability, test=test.value))
    for path in written:
        print(path)


def register(app: typer.Typer) -> None:
    app.command()(detect)
