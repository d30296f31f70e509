"""The per-sample JSONL of an eval run: appended batch by batch, read back to resume or summarise.

One JSON object per line (see :data:`FIELDS`). A run killed mid-write leaves at most a truncated last line
(no newline): :meth:`SampleStore.load` ignores it and :meth:`SampleStore.repair` cuts it off before appending.
A broken line anywhere else means the file was edited: a one-line error asks for ``--overwrite``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

from moeguard.errors import MoeguardError

#: Fields of every record, in file order.
FIELDS = (
    "key",
    "index",
    "id",
    "kind",
    "prompt",
    "condition",
    "steering",
    "control",
    "experts",
    "jailbreak",
    "seed",
    "output",
    "label",
    "score",
    "metrics",
    "details",
)


def sample_key(condition: str, jailbreak: str, seed: int, index: int) -> str:
    """The identity of one sample: condition, jailbreak, seed and the item's position in the benchmark."""
    return f"{condition}|{jailbreak}|{seed}|{index}"


class SampleStore:
    """``samples.jsonl``: records keyed by :func:`sample_key` (the first record of a key wins)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def _lines(self) -> tuple[list[dict], int]:
        """Records of the complete lines and the byte length of that valid prefix of the file.

        A last line without its newline is an interrupted write: it is not counted, even if it parses.
        """
        if not self.path.exists():
            return [], 0
        data = self.path.read_bytes()
        records: list[dict] = []
        good = 0
        while True:
            end = data.find(b"\n", good)
            if end == -1:
                return records, good
            line = data[good:end]
            if line.strip():
                try:
                    record = json.loads(line)
                except (ValueError, UnicodeDecodeError):
                    record = None
                if not isinstance(record, dict) or "key" not in record:
                    number = data.count(b"\n", 0, good) + 1
                    raise MoeguardError(
                        f"{self.path} line {number} is not a sample record; the run folder is damaged: pass "
                        "--overwrite to start again"
                    )
                records.append(record)
            good = end + 1

    def load(self) -> dict[str, dict]:
        """Records by key, in file order (a truncated last line is ignored)."""
        records, _ = self._lines()
        out: dict[str, dict] = {}
        for record in records:
            out.setdefault(record["key"], record)
        return out

    def repair(self) -> None:
        """Cut a truncated last line off (an interrupted write) so that appends start on a fresh line."""
        if not self.path.exists():
            return
        _, good = self._lines()
        if good < self.path.stat().st_size:
            with open(self.path, "r+b") as handle:
                handle.truncate(good)

    def append(self, records: Iterable[dict]) -> None:
        """Append records (one line each) and flush them to disk."""
        lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        if not lines:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(lines)
            handle.flush()
            os.fsync(handle.fileno())

    def remove(self) -> None:
        """Delete the file (``--overwrite``)."""
        self.path.unlink(missing_ok=True)
