"""Reading user text files with one-line errors: missing files, folders, binary data and bad encodings."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from moeguard.errors import MoeguardError


def check_input_file(path: str | Path, what: str, hint: str = "") -> Path:
    """``path`` as a Path; one-line errors when it does not exist or is a folder."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise MoeguardError(f"{what} {path} is a folder, not a file{'; ' + hint if hint else ''}")
    if not path.is_file():
        raise MoeguardError(f"{what} {path} does not exist{'; ' + hint if hint else ''}")
    return path


def decode(data: bytes, path: Path | str, what: str) -> str:
    """UTF-8 text of ``data`` (a BOM is dropped); binary or non-UTF-8 bytes name the file and line."""
    if b"\x00" in data[:8192]:
        line = data[: data.index(b"\x00")].count(b"\n") + 1
        raise MoeguardError(f"{what} {path} looks binary (NUL byte on line {line}); pass a UTF-8 text file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise MoeguardError(
            f"{what} {path}:{line} is not UTF-8 (byte 0x{data[err.start]:02x}); save the file as UTF-8"
        ) from None


def read_text(path: str | Path, what: str = "file", hint: str = "") -> str:
    """The whole file as text (see :func:`decode`)."""
    path = check_input_file(path, what, hint)
    return decode(path.read_bytes(), path, what)


def iter_lines(path: str | Path, what: str = "file", hint: str = "") -> Iterator[tuple[int, str]]:
    """``(line number, line)`` of a text file, streamed (line-wise UTF-8 check, one-line errors)."""
    path = check_input_file(path, what, hint)
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if b"\x00" in raw:
                raise MoeguardError(f"{what} {path} looks binary (NUL byte on line {number}); pass a UTF-8 text file")
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise MoeguardError(
                    f"{what} {path}:{number} is not UTF-8 (byte 0x{raw[err.start]:02x}); save the file as UTF-8"
                ) from None
            yield number, text.removeprefix("\ufeff") if number == 1 else text


def parse_jsonl(lines, path: str | Path, hint: str = "one JSON object per line") -> Iterator[tuple[str, object]]:
    """``(where, record)`` for every non-blank line of ``(number, text)`` pairs; ``where`` is ``path:line``.

    A line that is not JSON raises a one-line MoeguardError naming the file and line.
    """
    import json

    for number, line in lines:
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise MoeguardError(f"{where}: not valid JSON ({err.msg}); {hint}") from None
        yield where, record


def iter_jsonl(path: str | Path, what: str = "JSONL file", hint: str = "") -> Iterator[tuple[str, object]]:
    """``(where, record)`` for every non-blank line of a JSONL file, streamed (one-line errors)."""
    yield from parse_jsonl(iter_lines(path, what, hint), path)
