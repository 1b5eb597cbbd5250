"""Telling "the database is unavailable" from "the database refused this data"."""

from __future__ import annotations

import sqlite3

import asyncpg
import pytest
from sqlalchemy.exc import (
    DBAPIError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    ProgrammingError,
    StatementError,
)

from callbridge.store.failures import Failure, classify, describe


def wrapped(error: type[DBAPIError], orig: BaseException) -> DBAPIError:
    """What SQLAlchemy raises for a driver error, chained the way it chains them."""
    try:
        raise error("INSERT INTO turns ...", {"text": "secret words"}, orig) from orig
    except DBAPIError as exc:
        return exc


def asyncpg_error(cls: type[Exception], message: str = "refused: secret words") -> Exception:
    """asyncpg's error, as SQLAlchemy's asyncpg adapter passes it on (with `sqlstate`)."""
    try:
        raise cls(message)
    except Exception as exc:
        return exc


class AdaptedError(Exception):
    """SQLAlchemy's asyncpg adapter error: carries the SQLSTATE, caused by asyncpg's error."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(str(cause))
        self.sqlstate = getattr(cause, "sqlstate", None)
        self.__cause__ = cause


REFUSED = {
    "NUL in text (22021)": wrapped(DBAPIError, AdaptedError(
        asyncpg_error(asyncpg.exceptions.CharacterNotInRepertoireError))),
    "untranslatable character (22P05)": wrapped(DBAPIError, AdaptedError(
        asyncpg_error(asyncpg.exceptions.UntranslatableCharacterError))),
    "value too long (22001)": wrapped(DBAPIError, AdaptedError(
        asyncpg_error(asyncpg.exceptions.StringDataRightTruncationError))),
    "NOT NULL (sqlite3.IntegrityError)": wrapped(IntegrityError,
                                                 sqlite3.IntegrityError("NOT NULL")),
    "asyncpg's client-side DataError (an InterfaceError)": wrapped(InterfaceError, ValueError(
        "invalid input for query argument $7: 1180591620717411303424 (value out of range)")),
    "an integer beyond 64 bits (aiosqlite)": OverflowError("Python int too large"),
    "a lone surrogate": UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed"),
    "a parameter SQLAlchemy cannot process": StatementError("bad value", "INSERT", {},
                                                            TypeError("not a str")),
}

UNAVAILABLE = {
    "SQLite locked": wrapped(OperationalError, sqlite3.OperationalError("database is locked")),
    "connection refused": ConnectionRefusedError(111, "Connection refused"),
    "write timed out": TimeoutError(),
    "connection lost": wrapped(InterfaceError, asyncpg_error(
        asyncpg.exceptions.ConnectionDoesNotExistError)),
    "server shutting down (57P01)": wrapped(DBAPIError, AdaptedError(
        asyncpg_error(asyncpg.exceptions.AdminShutdownError))),
    "deadlock (40P01)": wrapped(DBAPIError, AdaptedError(
        asyncpg_error(asyncpg.exceptions.DeadlockDetectedError))),
    "table missing (42P01): the schema's fault, not the record's": wrapped(
        ProgrammingError, AdaptedError(asyncpg_error(asyncpg.exceptions.UndefinedTableError))),
    "connection failure (08006)": wrapped(OperationalError, AdaptedError(
        asyncpg_error(asyncpg.exceptions.ConnectionFailureError))),
}


@pytest.mark.parametrize("exc", REFUSED.values(), ids=REFUSED.keys())
def test_data_the_database_or_its_driver_refuses_is_rejected(exc: BaseException) -> None:
    """Writing these again fails the same way: the record is dropped, not retried."""
    assert classify(exc) is Failure.REJECTED


@pytest.mark.parametrize("exc", UNAVAILABLE.values(), ids=UNAVAILABLE.keys())
def test_connection_server_and_timeout_failures_mean_unavailable(exc: BaseException) -> None:
    """These pass: the records are journaled and written once the database is back."""
    assert classify(exc) is Failure.UNAVAILABLE


def test_an_error_that_is_no_database_failure_is_not_classified() -> None:
    """A bug (KeyError) is neither: the writer lets it raise."""
    assert classify(KeyError("call_sid")) is None


def test_a_description_names_the_innermost_cause_and_its_sqlstate_never_the_value() -> None:
    """Log lines say what was refused and why, not the text that was refused."""
    exc = REFUSED["NUL in text (22021)"]
    assert describe(exc) == "CharacterNotInRepertoireError, SQLSTATE 22021"
    assert describe(OverflowError("Python int too large: 2**70")) == "OverflowError"
