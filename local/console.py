"""What `chalice local` prints: lines a person reads, unless asked for JSON.

Deployed, every log line is one JSON object (Powertools Logger) and every metric an EMF
line, for CloudWatch to index. In a terminal that is noise, so on the local stage:

* log lines are ``HH:MM:SS LEVEL message  key=value ...`` with the booking's ids first
  (``LOG_FORMAT=json make run`` keeps the JSON);
* EMF metric lines are off (``POWERTOOLS_METRICS_DISABLED=false make run`` prints them);
* a client that goes away mid-response (a closed tab, a curl ^C) is one line, not a
  BrokenPipe traceback;
* botocore's "Found credentials in environment variables" is not said: the embedded
  stack's credentials are fake on purpose, and nobody needs to hear about them.

Never imported by Lambda code (chalicelib/); installed by local.embedded for `chalice local`.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from typing import Any

from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

# Keys every line has (shown by the layout itself, or not worth a column).
_LAYOUT_KEYS = {"level", "location", "message", "timestamp", "service", "xray_trace_id", "sampling_rate"}
# The ids a reader follows a booking by, first and in this order.
_FIRST_KEYS = ("booking_id", "correlation_id", "step", "path")
_SHORT = {"booking_id": "booking", "correlation_id": "correlation"}
DISCONNECTS = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError)


class ReadableFormatter(LambdaPowertoolsFormatter):
    """Powertools' record (its keys, appended keys and ``extra``), laid out on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = json.loads(super().format(record))
        return readable(entry, record)


def readable(entry: dict[str, Any], record: logging.LogRecord) -> str:
    clock = _clock(record)
    level = str(entry.get("level", record.levelname))
    ordered = [key for key in _FIRST_KEYS if key in entry]
    ordered += sorted(key for key in entry if key not in _LAYOUT_KEYS and key not in _FIRST_KEYS)
    fields = " ".join(f"{_SHORT.get(key, key)}={_value(entry[key])}" for key in ordered)
    line = f"{clock} {level:<7} {entry.get('message', '')}"
    return f"{line}  {fields}" if fields else line


def _clock(record: logging.LogRecord) -> str:
    import time

    return time.strftime("%H:%M:%S", time.localtime(record.created))


def _value(value: Any) -> str:
    if isinstance(value, str):
        return value if value and " " not in value else json.dumps(value)
    return json.dumps(value, default=str, separators=(",", ":"))


def readable_logs_requested() -> bool:
    return os.environ.get("LOG_FORMAT", "readable").strip().lower() != "json"


def install() -> None:
    """Make `chalice local`'s output readable (see the module docstring)."""
    from chalicelib.logs import logger

    if readable_logs_requested():
        for handler in logger.handlers:
            handler.setFormatter(ReadableFormatter())
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    logging.getLogger("botocore.credentials").setLevel(logging.WARNING)
    _quiet_disconnects()


def _quiet_disconnects() -> None:
    from chalice.local import ThreadedHTTPServer

    if getattr(ThreadedHTTPServer.handle_error, "quiet_disconnects", False):
        return
    original = ThreadedHTTPServer.handle_error

    def handle_error(self: Any, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, DISCONNECTS):
            sys.stderr.write(f"{client_address[0]} went away before the answer was sent ({type(error).__name__})\n")
            return
        original(self, request, client_address)

    handle_error.quiet_disconnects = True  # type: ignore[attr-defined]
    ThreadedHTTPServer.handle_error = handle_error  # type: ignore[method-assign]
