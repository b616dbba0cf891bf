"""Logging set-up for the command line: readable lines by default, or one JSON object per
record (``swarm-ray --log-format json ...``) for log shippers. Under Ray the same choice is
passed to ``ray.init(logging_config=...)``, so actors log in the same format."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from typing import Any, Literal

LogFormat = Literal["text", "json"]
ENV_LOG_FORMAT = "SWARM_RAY_LOG_FORMAT"
ENV_LOG_LEVEL = "SWARM_RAY_LOG_LEVEL"

# attributes every LogRecord has; anything else was passed in ``extra=`` and is kept
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}
_handler: logging.Handler | None = None  # the one configure_logging added


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, ISO 8601 with ms), level, logger, message, the
    record's ``extra`` fields and, for an exception, its type and traceback."""

    def format(self, record: logging.LogRecord) -> str:
        t = time.gmtime(record.created)
        out: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", t) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def log_format() -> LogFormat:
    return "json" if os.environ.get(ENV_LOG_FORMAT, "text").lower() == "json" else "text"


def configure_logging(fmt: LogFormat = "text", level: str = "INFO") -> None:
    """The root logger to stderr in ``fmt``; remembered in the environment so that a Ray
    connection made later (and the processes it starts) uses the same format."""
    os.environ[ENV_LOG_FORMAT], os.environ[ENV_LOG_LEVEL] = fmt, level.upper()
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    global _handler
    root = logging.getLogger()
    if _handler is not None:
        root.removeHandler(_handler)
    _handler = handler
    root.addHandler(handler)
    root.setLevel(level.upper())
