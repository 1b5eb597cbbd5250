"""Why a write of the call record failed: the database is unavailable, or it refused the data.

The writer journals and retries on the first (the same records will land once the database is
back); on the second it retries record by record and drops only what is refused, because writing
the same record again fails the same way forever.

A failure is `REJECTED` when the exception or one of its explicit causes (SQLAlchemy's `.orig`,
`raise ... from`) is

- a SQLSTATE of class 22 (data exception: U+0000 in text, a number out of range, an invalid
  encoding — asyncpg's `DataError` family such as `CharacterNotInRepertoireError`) or class 23
  (integrity constraint violation: the upserts absorb duplicates, so what is left — NOT NULL,
  foreign key, check — is the record's fault);
- SQLAlchemy's `DataError` or `IntegrityError`;
- a value the driver or a row builder cannot represent: `ValueError` (with `UnicodeError` and
  asyncpg's client-side `DataError`), `TypeError`, `OverflowError` (aiosqlite: an integer beyond
  64 bits; a timestamp beyond the platform's range).

It is `UNAVAILABLE` for every other database, network or timeout error — connection refused or
lost, timeouts, SQLAlchemy's `OperationalError`/`InterfaceError`, a locked SQLite file — and
whenever a cause says the connection or the server failed (SQLSTATE 08 connection, 40 rollback,
53 resources, 57 operator intervention, 58 system error; `OSError`, `TimeoutError`): when in
doubt the record is kept. Anything else is no database failure at all (`None`: a bug, let it
raise). No I/O.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator

from sqlalchemy.exc import DataError, IntegrityError, SQLAlchemyError

UNAVAILABLE_ERRORS = (SQLAlchemyError, OSError, TimeoutError, ConnectionError)
TRANSIENT_SQLSTATES = ("08", "40", "53", "57", "58")
REJECTED_SQLSTATES = ("22", "23")
REJECTED_TYPES = (DataError, IntegrityError, ValueError, TypeError, OverflowError)


class Failure(enum.Enum):
    UNAVAILABLE = "unavailable"  # retry later: journal it
    REJECTED = "rejected"  # never retry: drop it


def classify(exc: BaseException) -> Failure | None:
    """What a failed write means; None when `exc` is not a failure of the database. Only an
    instance of `UNAVAILABLE_ERRORS` is ever `UNAVAILABLE`, so callers may catch those."""
    causes = list(_chain(exc))
    unavailable = isinstance(exc, UNAVAILABLE_ERRORS)
    if unavailable and any(_transient(cause) for cause in causes):
        return Failure.UNAVAILABLE
    if any(_rejected(cause) for cause in causes):
        return Failure.REJECTED
    return Failure.UNAVAILABLE if unavailable else None


def describe(exc: BaseException) -> str:
    """The innermost cause's type and SQLSTATE, e.g. "CharacterNotInRepertoireError, SQLSTATE
    22021": fit for a log line, because it never holds the refused value (messages can)."""
    causes = list(_chain(exc))
    codes = [code for code in map(_sqlstate, causes) if code]
    name = type(causes[-1]).__name__
    return f"{name}, SQLSTATE {codes[-1]}" if codes else name


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """`exc`, then what it wraps (SQLAlchemy's `.orig`, else `__cause__`), innermost last."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        orig = getattr(current, "orig", None)
        current = orig if isinstance(orig, BaseException) else current.__cause__


def _sqlstate(exc: BaseException) -> str:
    code = getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)
    return code if isinstance(code, str) else ""


def _transient(exc: BaseException) -> bool:
    return (isinstance(exc, (OSError, TimeoutError))
            or _sqlstate(exc).startswith(TRANSIENT_SQLSTATES))


def _rejected(exc: BaseException) -> bool:
    return isinstance(exc, REJECTED_TYPES) or _sqlstate(exc).startswith(REJECTED_SQLSTATES)
