"""Known benchmarks: their published schemas, file names, hub copies and how a row becomes an item.

A benchmark module (``advbench.py``, ``xstest.py``, ...) builds one :class:`Benchmark` and calls
:func:`register`. A new benchmark is a new module, not a new ``if``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from moeguard.errors import MoeguardError
from moeguard.eval.benchmarks.item import BenchmarkItem


@dataclass(frozen=True)
class RowContext:
    """What a converter knows besides the row: benchmark, ``where`` (for errors and ``source``), row index
    and the part the row came from (a published file's part, or the hub split)."""

    benchmark: str
    where: str
    index: int
    part: str | None = None


Converter = Callable[[Mapping[str, Any], RowContext], BenchmarkItem]


@dataclass(frozen=True)
class Layout:
    """One column layout of a benchmark: the columns a row must have and the converter of such rows."""

    columns: tuple[str, ...]
    convert: Converter
    optional: tuple[str, ...] = ()

    def describe(self) -> str:
        """``goal,target`` (optional columns in brackets)."""
        text = ",".join(self.columns)
        return text + (f"[,{','.join(self.optional)}]" if self.optional else "")


@dataclass(frozen=True)
class HubSource:
    """Where the benchmark lives on the Hugging Face hub: repo, config, its splits and the ones loaded by default."""

    repo: str
    config: str | None = None
    splits: tuple[str, ...] = ("train",)
    default_splits: tuple[str, ...] = ("train",)


@dataclass(frozen=True)
class Benchmark:
    """A public benchmark as moeguard reads it.

    * ``layouts``: the published column layout first, then layouts of known hub mirrors.
    * ``files``: part name → published file names (relative paths; matched as path suffixes).
    * ``default_parts``: parts a folder load reads when no split is given.
    * ``labels``: extra split names an item answers to besides its kind (e.g. XSTest ``safe``/``unsafe``).
    """

    name: str
    title: str
    layouts: tuple[Layout, ...]
    files: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    default_parts: tuple[str, ...] = ()
    hub: HubSource | None = None
    aliases: tuple[str, ...] = ()
    labels: Callable[[BenchmarkItem], Iterable[str]] | None = None

    @property
    def published(self) -> Layout:
        """The published column layout."""
        return self.layouts[0]

    def file_names(self) -> list[str]:
        """Every published file name (all parts)."""
        return [name for names in self.files.values() for name in names]

    def part_of(self, filename: str) -> str | None:
        """The part whose published file name ``filename`` (a path) ends with, else None."""
        posix = filename.replace("\\", "/")
        for part, names in self.files.items():
            if any(posix == n or posix.endswith("/" + n) for n in names):
                return part
        return None

    def item_labels(self, item: BenchmarkItem) -> set[str]:
        """Names a split filter matches this item by: its kind plus the benchmark's own labels."""
        labels: set[str] = {item.kind}
        if self.labels is not None:
            labels.update(str(label) for label in self.labels(item) if label)
        return labels

    def layout_for(self, columns: Sequence[str], where: str) -> Layout:
        """The first layout whose columns are all present, else a one-line error naming the missing ones."""
        present = set(columns)
        for layout in self.layouts:
            if set(layout.columns) <= present:
                return layout
        missing = [c for c in self.published.columns if c not in present]
        raise MoeguardError(
            f"{where}: missing column(s) {', '.join(missing)} for {self.title}; expected the published schema "
            f"{self.published.describe()} (found: {', '.join(columns) or 'no columns'})"
        )


_REGISTRY: dict[str, Benchmark] = {}
_ORDER: list[Benchmark] = []


def _key(name: str) -> str:
    return name.strip().lower().replace("_", "-")


def register(benchmark: Benchmark) -> Benchmark:
    """Make ``benchmark`` known by its name and aliases (returns it, for module-level constants)."""
    for name in (benchmark.name, *benchmark.aliases):
        _REGISTRY[_key(name)] = benchmark
    if benchmark not in _ORDER:
        _ORDER.append(benchmark)
    return benchmark


def find_benchmark(name: str) -> Benchmark | None:
    """The benchmark called ``name`` (case, ``_``/``-`` insensitive; aliases too), else None."""
    return _REGISTRY.get(_key(name))


def find_by_repo(repo: str) -> Benchmark | None:
    """The benchmark whose hub copy is ``repo``, else None."""
    for benchmark in _ORDER:
        if benchmark.hub is not None and benchmark.hub.repo.lower() == repo.lower():
            return benchmark
    return None


def benchmarks() -> list[Benchmark]:
    """All registered benchmarks in registration order."""
    return list(_ORDER)


def benchmark_names() -> list[str]:
    """Registered benchmark names."""
    return [b.name for b in _ORDER]


def detect(columns: Sequence[str], filename: str) -> Benchmark | None:
    """The benchmark a file belongs to: by published file name first, else by its published columns
    (the benchmark with the most required columns present wins; None when nothing or a tie matches)."""
    for benchmark in _ORDER:
        if benchmark.part_of(filename) is not None:
            return benchmark
    present = set(columns)
    matches = [b for b in _ORDER if set(b.published.columns) <= present]
    if not matches:
        return None
    best = max(len(b.published.columns) for b in matches)
    top = [b for b in matches if len(b.published.columns) == best]
    return top[0] if len(top) == 1 else None


def schemas_summary() -> str:
    """``advbench (goal,target); harmbench (...)`` — for error messages."""
    return "; ".join(f"{b.name} ({b.published.describe()})" for b in _ORDER)


# ---------------------------------------------------------------------------------------- cell helpers
def text_cell(row: Mapping[str, Any], column: str, where: str, required: bool = True) -> str:
    """The cell as a stripped string; a missing or empty required cell is a one-line error."""
    value = row.get(column)
    if value is None or (isinstance(value, float) and value != value):  # None or NaN (pandas-written files)
        value = ""
    if not isinstance(value, str):
        value = str(value)
    value = value.strip()
    if required and not value:
        raise MoeguardError(f"{where}: empty '{column}'; every row needs it")
    return value


def structured_cell(row: Mapping[str, Any], column: str, where: str) -> Any:
    """A list/dict cell; CSV cells holding JSON text are parsed."""
    value = row.get(column)
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            raise MoeguardError(f"{where}: column '{column}' is not valid JSON ({value[:40]!r})") from None
    return value


def strings(value: Any, column: str, where: str) -> list[str]:
    """A string or a list of strings as a non-empty list of non-empty strings."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
        raise MoeguardError(f"{where}: '{column}' must be a string or a non-empty list of strings")
    return [v.strip() for v in value]
