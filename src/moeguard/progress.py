"""One progress-bar style for every long-running command (rich, on stderr)."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn


def progress_bar(transient: bool = False) -> Progress:
    """A rich Progress on stderr: description, bar, done/total, elapsed."""
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=transient,
    )


class _NoProgress:
    """The part of ``rich.progress.Progress`` moeguard uses, doing nothing (progress switched off)."""

    def __enter__(self) -> _NoProgress:
        return self

    def __exit__(self, *exc) -> None:
        return None

    def add_task(self, description: str, total: float | None = None, **fields) -> TaskID:
        return TaskID(0)

    def update(self, task: TaskID, **fields) -> None:
        return None

    def advance(self, task: TaskID, advance: float = 1) -> None:
        return None


def maybe_progress(enabled: bool) -> Progress | _NoProgress:
    """:func:`progress_bar` when ``enabled``, else an object with the same calls that shows nothing."""
    return progress_bar() if enabled else _NoProgress()
