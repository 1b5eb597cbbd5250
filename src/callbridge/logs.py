"""Logging: structlog, JSON lines in production and readable lines in a terminal.

Owns the one logging configuration of the process. Library loggers (uvicorn, websockets,
SQLAlchemy) go through the same renderer, so every line is JSON where it must be. Calls bind
`call_sid` (and `stream_sid`) once and every line of that call carries them. Never log audio,
secrets or unmasked phone numbers (`callbridge.redact.mask_number`); nothing logs per frame.
"""

from __future__ import annotations

import logging
import sys

import structlog


def _drop_terminal_colours(_logger: object, _name: str,
                           event: structlog.types.EventDict) -> structlog.types.EventDict:
    event.pop("color_message", None)  # uvicorn's copy of the message with ANSI escapes
    return event


_SHARED: list[structlog.types.Processor] = [
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def configure(level: str = "info", *, json: bool | None = None) -> None:
    """Route structlog and stdlib logging to stderr: JSON unless stderr is a terminal."""
    as_json = not sys.stderr.isatty() if json is None else json
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer(ensure_ascii=False) if as_json
        else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[structlog.stdlib.filter_by_level, *_SHARED,
                    structlog.processors.format_exc_info,
                    structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = _StderrHandler()
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        foreign_pre_chain=[*_SHARED, structlog.stdlib.ExtraAdder(), _drop_terminal_colours],
    ))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(getattr(logging, level.upper()))
    for noisy in ("alembic", "httpx"):  # a line per migration or per HTTP request is noise
        logging.getLogger(noisy).setLevel(logging.WARNING)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stderr` is now, not the one at configuration time (tests swap it
    and close the old one)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger
