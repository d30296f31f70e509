"""Read a benchmark file into rows: CSV, JSON, JSONL or parquet, optionally compressed (.gz, .xz, .bz2).

>>> table = read_table("harmful_behaviors.csv")
>>> table.columns, table.rows[0]        # ('goal', 'target'), ('harmful_behaviors.csv:2', {'goal': ..., ...})

Every problem (missing file, not UTF-8, binary, malformed CSV/JSON, no rows) raises a one-line
:class:`MoeguardError` naming the file; nothing else escapes (no UnicodeDecodeError, no csv.Error).
"""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import json
import lzma
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moeguard.errors import MoeguardError
from moeguard.textio import parse_jsonl

TEXT_FORMATS = {".csv": "csv", ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl"}
COMPRESSIONS = {".gz": gzip.decompress, ".xz": lzma.decompress, ".bz2": bz2.decompress}
SUPPORTED = ".csv, .json, .jsonl, .parquet (text formats optionally .gz/.xz/.bz2)"
#: Long context strings (HarmBench contextual behaviours) exceed csv's default 128 KiB field limit.
_CSV_FIELD_LIMIT = 1 << 24

Row = tuple[str, dict[str, Any]]


@dataclass
class Table:
    """Rows of one file: ``columns`` (header, parquet schema or keys of the first record) and
    ``rows`` as ``(where, record)`` with ``where`` = ``path:line`` (or ``path row i``)."""

    path: Path
    columns: tuple[str, ...]
    rows: list[Row]


def split_suffix(path: Path) -> tuple[str, str | None]:
    """``(format suffix, compression suffix or None)`` of a file name: ``x.jsonl.gz`` → (".jsonl", ".gz")."""
    suffixes = [s.lower() for s in path.suffixes]
    compression = suffixes[-1] if suffixes and suffixes[-1] in COMPRESSIONS else None
    if compression:
        suffixes = suffixes[:-1]
    return (suffixes[-1] if suffixes else ""), compression


def is_data_file(path: Path) -> bool:
    """True for a file name this module can read."""
    fmt, compression = split_suffix(path)
    return fmt in TEXT_FORMATS or (fmt == ".parquet" and compression is None)


def read_table(path: str | Path) -> Table:
    """All rows of a CSV/JSON/JSONL/parquet file (see the module docstring for the error contract)."""
    path = Path(path)
    if not path.is_file():
        raise MoeguardError(f"benchmark file {path} does not exist; pass a {SUPPORTED} file")
    fmt, compression = split_suffix(path)
    if fmt == ".parquet" and compression is None:
        return _read_parquet(path)
    if fmt not in TEXT_FORMATS:
        raise MoeguardError(f"{path}: unsupported file type {''.join(path.suffixes) or '(none)'}; expected {SUPPORTED}")
    try:
        data = path.read_bytes()
    except OSError as err:
        raise MoeguardError(f"{path}: cannot read the file ({err.strerror or err})") from None
    if compression:
        try:
            data = COMPRESSIONS[compression](data)
        except (OSError, EOFError, lzma.LZMAError, ValueError) as err:
            raise MoeguardError(f"{path}: not a valid {compression[1:]} archive ({err})") from None
    kind = TEXT_FORMATS[fmt]
    reader = {"csv": _read_csv, "json": _read_json, "jsonl": _read_jsonl}[kind]
    table = reader(path, _decode(path, data, kind))
    if not table.rows:
        raise MoeguardError(f"{path} has no rows; a benchmark file needs at least one record")
    return table


def _decode(path: Path, data: bytes, kind: str) -> str:
    if b"\x00" in data[:8192]:
        raise MoeguardError(
            f"{path}: binary data (NUL bytes), not UTF-8 {kind.upper()} text; pass the benchmark's published "
            f"{kind.upper()} file saved as UTF-8"
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise MoeguardError(
            f"{path}: not UTF-8 text (byte 0x{data[err.start]:02x} at offset {err.start}); re-save it as UTF-8"
        ) from None


def _read_csv(path: Path, text: str) -> Table:
    if csv.field_size_limit() < _CSV_FIELD_LIMIT:
        csv.field_size_limit(_CSV_FIELD_LIMIT)
    reader = csv.DictReader(io.StringIO(text, newline=""))
    rows: list[Row] = []
    try:
        columns = tuple(reader.fieldnames or ())
        for record in reader:
            where = f"{path}:{reader.line_num}"
            if None in record:
                raise MoeguardError(f"{where}: more cells than header columns; quote cells that contain commas")
            rows.append((where, dict(record)))
    except csv.Error as err:
        raise MoeguardError(f"{path}:{reader.line_num}: malformed CSV ({err})") from None
    return Table(path, columns, rows)


def _check_record(record: Any, where: str) -> dict[str, Any]:
    if not isinstance(record, dict):
        raise MoeguardError(f"{where}: expected a JSON object with the benchmark's fields, got {type(record).__name__}")
    return record


def _read_jsonl(path: Path, text: str) -> Table:
    rows: list[Row] = [
        (where, _check_record(record, where))
        for where, record in parse_jsonl(enumerate(text.splitlines(), start=1), path, "JSONL holds one object per line")
    ]
    return Table(path, tuple(rows[0][1]) if rows else (), rows)


def _read_json(path: Path, text: str) -> Table:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise MoeguardError(f"{path}: not valid JSON ({err.msg} at line {err.lineno})") from None
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        data = data["data"]
    if not isinstance(data, list):
        raise MoeguardError(f'{path}: expected a JSON list of records (or {{"data": [...]}})')
    rows = [(f"{path} item {i}", _check_record(record, f"{path} item {i}")) for i, record in enumerate(data)]
    return Table(path, tuple(rows[0][1]) if rows else (), rows)


def _read_parquet(path: Path) -> Table:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise MoeguardError(f"{path}: reading parquet needs pyarrow (pip install pyarrow)") from None
    try:
        table = pq.read_table(path)
    except Exception as err:  # pyarrow raises ArrowInvalid, OSError, ... for corrupt files
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise MoeguardError(f"{path}: not a readable parquet file ({first[:160]})") from None
    records = table.to_pylist()
    if not records:
        raise MoeguardError(f"{path} has no rows; a benchmark file needs at least one record")
    return Table(path, tuple(table.schema.names), [(f"{path} row {i}", r) for i, r in enumerate(records)])
