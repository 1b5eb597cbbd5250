"""Where bridges send their records: the store's writer, or nowhere when the record is off."""

from __future__ import annotations

from typing import Protocol

from callbridge.store.records import Record


class RecordSink(Protocol):
    def submit(self, record: Record) -> None:
        """Take a record without blocking."""


class NullSink:
    """Discards records (`DATABASE_URL=none`)."""

    def submit(self, record: Record) -> None:
        return None


NULL_SINK = NullSink()
