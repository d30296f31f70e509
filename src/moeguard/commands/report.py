"""``moeguard report``: one markdown page (and PNGs) from detect / eval / drift run folders."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def report(
    folders: Annotated[
        list[Path], typer.Argument(help="Run folders written by detect, eval or safemoe drift.", metavar="DIR...")
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="The markdown file to write.")] = Path("report.md"),
    top: Annotated[int, typer.Option("--top", min=1, help="Experts listed per detect run.")] = 10,
) -> None:
    """Write one markdown page from run folders: experts and heatmaps, eval rates with CIs and a bar chart of
    the conditions, routing-drift tables and plots. Figures go to <output stem>_files/ beside the page."""
    from moeguard.report.page import build_report

    result = build_report(folders, output, top=top)
    for folder, found in result.found.items():
        print(f"{folder}: {', '.join(found)}")
    print(result.path)


def register(app: typer.Typer) -> None:
    app.command()(report)
