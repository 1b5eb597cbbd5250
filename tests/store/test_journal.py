"""The local journal the writer spills to when the database is down."""

from __future__ import annotations

from pathlib import Path

from callbridge.store.journal import Journal
from callbridge.store.records import CallEnded, EventRecorded, TurnRecorded, from_dict, to_dict

RECORDS = [
    TurnRecorded("CA1", "i1", "agent", "Hé, “quoted”", "Hé", True, 10, 20),
    EventRecorded("CA1", 1, "dtmf", 1.5, {"digit": "5"}),
    CallEnded("CA1", 2.0, "caller hung up", 1.0, 0.01),
]


def test_records_round_trip_through_dicts() -> None:
    """to_dict/from_dict is lossless for every field."""
    assert [from_dict(to_dict(r)) for r in RECORDS] == RECORDS


def test_appended_records_read_back_in_order(tmp_path: Path) -> None:
    """Appends accumulate; read returns everything in the order written; clear empties it."""
    journal = Journal(tmp_path / "sub" / "journal.jsonl")
    journal.append(RECORDS[:2])
    journal.append(RECORDS[2:])
    assert journal.read() == RECORDS
    assert len(journal) == 3
    journal.clear()
    assert journal.read() == []
    assert len(journal) == 0


def test_a_torn_last_line_is_skipped_and_the_rest_kept(tmp_path: Path) -> None:
    """A crash mid-write leaves half a line; everything before it survives."""
    journal = Journal(tmp_path / "journal.jsonl")
    journal.append(RECORDS)
    with journal.path.open("a") as file:
        file.write('{"record": "TurnRecorded", "call_sid": "CA1", "ite')
    assert journal.read() == RECORDS
