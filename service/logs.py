"""JSON log lines carrying the request id of the request (or job) they belong to."""

from __future__ import annotations

import json
import logging
import logging.config
import re
import secrets
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
_VALID_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def new_request_id(offered: str | None = None) -> str:
    """The client's ``X-Request-Id`` when it is safe to echo, else a fresh one."""
    if offered and _VALID_ID.fullmatch(offered):
        return offered
    return secrets.token_hex(12)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id and extras."""

    _STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "color_message"}

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = request_id.get()
        if rid:
            entry["request_id"] = rid
        fields = vars(record)
        for key in fields.keys() - self._STANDARD:
            if not key.startswith("_"):
                value = fields[key]
                entry[key] = value if isinstance(value, int | float | bool | None) else str(value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def logging_config(fmt: str, level: str = "INFO") -> dict[str, Any]:
    """A dictConfig for our loggers and uvicorn's: ``json`` or ``text`` lines on stderr."""
    _lighter_records()
    formatter: dict[str, Any] = (
        {"()": JsonFormatter}
        if fmt == "json"
        else {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": formatter},
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "formatter": "default"},
        },
        "root": {"handlers": ["stderr"], "level": level},
        "loggers": {
            "uvicorn": {"handlers": ["stderr"], "level": level, "propagate": False},
            "uvicorn.error": {"level": level},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
            "aiobotocore": {"level": "WARNING"},
            "botocore": {"level": "WARNING"},
            "pgqueuer": {"level": "WARNING"},
            # httpx logs each request's full URL at INFO: a status callback's query string
            # would reach the logs (the dispatcher logs each attempt itself, without it).
            "httpx": {"level": "WARNING"},
            "httpcore": {"level": "WARNING"},
        },
    }


def _lighter_records() -> None:
    """Neither format shows a record's thread, process or source line, so a record need not
    look them up: with the access log on, that is a tenth of a metadata GET's time."""
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    # The module's documented switch: without a source file, no caller is looked for.
    logging._srcfile = None


def configure_logging(fmt: str, level: str = "INFO") -> None:
    logging.config.dictConfig(logging_config(fmt, level))
