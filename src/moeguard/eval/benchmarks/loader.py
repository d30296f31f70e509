"""``load_benchmark``: one entry point for every benchmark source.

>>> load_benchmark("xstest:data/xstest_prompts.csv", split="safe")     # NAME:PATH (file or folder)
>>> load_benchmark("data/harmful_behaviors.csv")                         # a file: schema detected
>>> load_benchmark("data/JBB-Behaviors/")                                # a folder of published files
>>> load_benchmark("advbench", limit=50)                                 # NAME: its hub copy, when reachable
>>> load_benchmark("builtin:organism-handwritten", split="lookalike")   # a built-in set

``split`` picks a published part (a file such as JBB's ``benign``, a hub split such as BeaverTails'
``30k_train``) or else filters items: by kind (``harmful``/``benign``) or a benchmark label (XSTest
``safe``/``unsafe`` or a type, HarmBench functional category, SORRY-Bench prompt style).
``limit`` keeps the first N items after the split. An existing file or folder wins over a benchmark name
spelled the same. Every failure is one :class:`MoeguardError` line.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moeguard.builtin import available, resolve
from moeguard.errors import MoeguardError
from moeguard.eval.benchmarks.hub import hub_rows
from moeguard.eval.benchmarks.item import BenchmarkItem
from moeguard.eval.benchmarks.registry import (
    Benchmark,
    RowContext,
    benchmark_names,
    benchmarks,
    detect,
    find_benchmark,
    find_by_repo,
    schemas_summary,
)
from moeguard.eval.benchmarks.tables import SUPPORTED, is_data_file, read_table, split_suffix

BUILTIN_PREFIX = "builtin:"


@dataclass
class Chunk:
    """Rows of one file or hub split, with the benchmark they belong to and the part they are."""

    benchmark: Benchmark
    part: str | None
    columns: tuple[str, ...]
    rows: Iterable[tuple[str, dict[str, Any]]]
    label: str


def load_benchmark(
    source: str | Path, split: str | None = None, limit: int | None = None, *, path: str | Path | None = None
) -> list[BenchmarkItem]:
    """Items of a benchmark from ``builtin:NAME``, ``NAME:PATH``, a file, a folder or a known ``NAME``
    (its hub copy); ``path=`` is the same as ``NAME:PATH``. See the module docstring."""
    if limit is not None and limit < 1:
        raise MoeguardError(f"limit must be at least 1, got {limit}")
    text = str(source).strip()
    if path is not None:
        return _load_named_path(_named(text), Path(path).expanduser(), split, limit)
    if text.startswith(BUILTIN_PREFIX):
        return _limit(_load_builtin(text[len(BUILTIN_PREFIX) :], split), limit)
    name, sep, rest = text.partition(":")
    if sep and find_benchmark(name) is not None and rest:
        return _load_named_path(_named(name), Path(rest).expanduser(), split, limit)
    local = Path(text).expanduser()
    if local.exists():
        return _load_local(local, None, split, limit)
    benchmark = find_benchmark(text)
    if benchmark is not None:
        return _load_hub(benchmark, benchmark.hub.repo if benchmark.hub else None, split, limit)
    if "/" in text and not text.startswith((".", "/", "~")) and not is_data_file(local):
        return _load_hub(find_by_repo(text), text, split, limit)
    if is_data_file(local) or text.startswith((".", "/", "~")) or split_suffix(local)[0]:
        raise MoeguardError(f"benchmark file {local} does not exist; pass a {SUPPORTED} file, a folder or NAME:PATH")
    raise MoeguardError(
        f"unknown benchmark {text!r}; pass a file, a folder, NAME:PATH, a hub dataset id or builtin:NAME "
        f"(NAME: {', '.join(benchmark_names())}; builtin: {', '.join(available('benchmark'))})"
    )


def _named(name: str) -> Benchmark:
    benchmark = find_benchmark(name)
    if benchmark is None:
        raise MoeguardError(f"unknown benchmark {name!r}; known: {', '.join(benchmark_names())}")
    return benchmark


def _limit(items: list[BenchmarkItem], limit: int | None) -> list[BenchmarkItem]:
    return items[:limit] if limit is not None else items


# ---------------------------------------------------------------------------------------- builtin
def _load_builtin(name: str, split: str | None) -> list[BenchmarkItem]:
    """A built-in benchmark registered with :mod:`moeguard.builtin` (kind ``benchmark``)."""
    return resolve("benchmark", name, split=split)


# ---------------------------------------------------------------------------------------- local files
def _load_named_path(benchmark: Benchmark, path: Path, split: str | None, limit: int | None) -> list[BenchmarkItem]:
    if not path.exists():
        raise MoeguardError(
            f"{benchmark.name}: {path} does not exist; pass the published file"
            + (f" ({', '.join(benchmark.file_names())})" if benchmark.files else "")
            + " or a folder holding it"
        )
    return _load_local(path, benchmark, split, limit)


def _files_in(folder: Path, names: Iterable[str]) -> list[Path]:
    found = []
    for name in names:
        base = name.rsplit("/", 1)[-1]
        matches = sorted(
            (p for p in folder.rglob(base) if p.is_file() and p.as_posix().endswith(name)),
            key=lambda p: (len(p.parts), str(p)),
        )
        if matches:
            found.append(matches[0])
    return found[:1]


def _folder_parts(folder: Path, benchmark: Benchmark, split: str | None) -> list[tuple[str | None, Path]]:
    """``(part, file)`` to read from a folder for ``benchmark``."""
    if benchmark.files:
        parts: list[str] = (
            [split]
            if split is not None and split in benchmark.files
            else list(benchmark.default_parts or benchmark.files)
        )
        chosen: list[tuple[str | None, Path]] = [
            (part, file) for part in parts for file in _files_in(folder, benchmark.files[part])
        ]
        if not chosen:
            wanted = ", ".join(n for part in parts for n in benchmark.files[part])
            raise MoeguardError(f"{folder}: no published {benchmark.name} file found (looked for {wanted})")
        return chosen
    data = sorted(p for p in folder.rglob("*") if p.is_file() and is_data_file(p))
    if len(data) != 1:
        raise MoeguardError(
            f"{folder}: {benchmark.name} has no fixed file name and the folder holds {len(data)} data files; "
            "pass the file itself"
        )
    return [(None, data[0])]


def _detect_folder(folder: Path) -> Benchmark:
    found = [b for b in benchmarks() if b.files and any(_files_in(folder, names) for names in b.files.values())]
    if len(found) == 1:
        return found[0]
    if found:
        names = ", ".join(b.name for b in found)
        raise MoeguardError(f"{folder} holds files of several benchmarks ({names}); pass NAME:{folder} or one file")
    known = ", ".join(n for b in benchmarks() for n in b.file_names())
    raise MoeguardError(f"{folder}: no published benchmark file found (known: {known}); pass NAME:PATH or a file")


def _load_local(path: Path, benchmark: Benchmark | None, split: str | None, limit: int | None) -> list[BenchmarkItem]:
    if path.is_dir():
        benchmark = benchmark or _detect_folder(path)
        sources = _folder_parts(path, benchmark, split)
    else:
        sources = [(None, path)]
    chunks: list[Chunk] = []
    for part, file in sources:
        table = read_table(file)
        found = benchmark or detect(table.columns, file.as_posix())
        if found is None:
            raise MoeguardError(
                f"{file}: columns {', '.join(table.columns)} match no known benchmark schema; pass NAME:{file} "
                f"(schemas: {schemas_summary()})"
            )
        part = part or found.part_of(file.as_posix()) or (split if split in found.files else None)
        chunks.append(Chunk(found, part, table.columns, table.rows, str(file)))
    used_split = split is not None and all(chunk.part == split for chunk in chunks)
    return _convert_all(chunks, None if used_split else split, limit)


# ---------------------------------------------------------------------------------------- hub
def _load_hub(
    benchmark: Benchmark | None, repo: str | None, split: str | None, limit: int | None
) -> list[BenchmarkItem]:
    if benchmark is not None and benchmark.hub is None:
        raise MoeguardError(f"{benchmark.name} has no hub copy; pass {benchmark.name}:PATH to its local file")
    assert repo is not None
    hub = benchmark.hub if benchmark is not None else None
    if hub is not None and split in hub.splits:
        splits: tuple[str, ...] = (split,)
        filter_split = None
    else:
        splits, filter_split = (hub.default_splits if hub else (split or "train",)), (split if hub else None)
    files = ", ".join(benchmark.file_names()) if benchmark and benchmark.files else "the published file"
    fix = f"download {files} and pass {benchmark.name if benchmark else 'NAME'}:PATH"
    chunks: list[Chunk] = []
    for hub_split in splits:
        columns, rows = hub_rows(repo, hub.config if hub else None, hub_split, fix)
        found = benchmark or detect(columns, repo)
        if found is None:
            raise MoeguardError(
                f"{repo}: columns {', '.join(columns)} match no known benchmark schema (schemas: {schemas_summary()})"
            )
        chunks.append(Chunk(found, hub_split, columns, rows, f"{repo}[{hub_split}]"))
    return _convert_all(chunks, filter_split, limit)


# ---------------------------------------------------------------------------------------- conversion
def _convert_all(chunks: list[Chunk], split: str | None, limit: int | None) -> list[BenchmarkItem]:
    """Convert every chunk's rows (stopping at ``limit``), keeping items whose labels include ``split``."""
    items: list[BenchmarkItem] = []
    seen: set[str] = set()
    for chunk in chunks:
        layout = chunk.benchmark.layout_for(chunk.columns, chunk.label)
        for index, (where, row) in enumerate(chunk.rows):
            item = layout.convert(row, RowContext(chunk.benchmark.name, where, index, chunk.part))
            labels = chunk.benchmark.item_labels(item)
            seen |= labels
            if split is None or split in labels:
                items.append(item)
                if limit is not None and len(items) >= limit:
                    return items
    if split is not None and not items:
        for chunk in chunks:
            seen |= set(chunk.benchmark.files) | set(chunk.benchmark.hub.splits if chunk.benchmark.hub else ())
        raise MoeguardError(f"split {split!r} matches no item; available: {', '.join(sorted(seen))}")
    return items
