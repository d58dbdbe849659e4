"""structlog set-up: console lines for people, JSON lines for machines, one call at start-up."""

from __future__ import annotations

import logging
import sys

import structlog


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A handler writing to whatever ``sys.stderr`` is when a record is emitted, not the stream of set-up
    time (which a test's output capture, or a daemoniser, may have closed since)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self) -> object:
        return sys.stderr

    @stream.setter
    def stream(self, _value: object) -> None:
        pass  # always the current sys.stderr


def configure_logging(fmt: str = "console", level: str = "info") -> None:
    """Route structlog and the standard library's logging through one renderer on stderr.

    Libraries that log every frame at INFO (``ocpp``, ``websockets``) are held at WARNING so a
    busy site does not drown the operator's log; our own code logs per-message only at DEBUG.
    """
    numeric_level = getattr(logging, level.upper())
    timestamper = structlog.processors.TimeStamper(fmt="iso", utc=True)
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        timestamper,
    ]
    renderer: structlog.types.Processor
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer()
        shared.append(structlog.processors.format_exc_info)
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())

    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        cache_logger_on_first_use=True,
    )
    handler = StderrHandler()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric_level)
    for noisy in ("ocpp", "websockets", "aiosqlite", "asyncio", "alembic"):
        logging.getLogger(noisy).setLevel(max(numeric_level, logging.WARNING))


def get_logger(name: str, **context: object) -> structlog.stdlib.BoundLogger:
    """A logger with ``context`` bound to every line it writes.

    Lazy: module-level loggers pick up the configuration made later by :func:`configure_logging`.
    """
    return structlog.get_logger(name, **context)
