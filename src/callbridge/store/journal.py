"""A local append-only file of records the database could not take, replayed when it is back.

One JSON object per line, flushed and fsynced per append, so a crash loses at most the line being
written. A torn last line (the crash) is skipped on reading. All file I/O is blocking: callers run
it in a thread, off the event loop.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

from callbridge.store.records import Record, from_dict, to_dict


class Journal:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def append(self, records: Sequence[Record]) -> None:
        lines = "".join(json.dumps(to_dict(r), separators=(",", ":")) + "\n" for r in records)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as file:
            file.write(lines)
            file.flush()
            os.fsync(file.fileno())

    def read(self) -> list[Record]:
        """Every intact record, in the order written."""
        if not self.path.exists():
            return []
        records: list[Record] = []
        with self.path.open(encoding="utf-8") as file:
            for line in file:
                try:
                    records.append(from_dict(json.loads(line)))
                except (ValueError, TypeError):
                    continue  # a torn or foreign line: skip it, keep the rest
        return records

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)

    def __len__(self) -> int:
        if not self.path.exists():
            return 0
        with self.path.open(encoding="utf-8") as file:
            return sum(1 for _ in file)
