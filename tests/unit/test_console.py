"""What `chalice local` prints (local/console.py): readable log lines with the booking's
ids first, and a client that went away as one line instead of a traceback."""

from __future__ import annotations

import io
import logging
from typing import Any

import pytest

from chalicelib.logs import bound, logger
from local import console


def test_a_log_line_reads_as_time_level_message_then_the_ids_and_the_extras() -> None:
    """GIVEN the readable formatter on the app's logger WHEN a step logs inside a booking's
    context THEN one line: time, level, message, booking, correlation and step first,
    then the extras in name order; nothing of Powertools' layout keys."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(console.ReadableFormatter())
    logger.addHandler(handler)  # type: ignore[attr-defined]
    try:
        with bound(booking_id="b-1", correlation_id="c-1", step="ReserveSeats"):
            logger.warning("seat held", extra={"seat": "12A", "cabin": "FIRST", "note": "two words"})
    finally:
        logger.handlers.remove(handler)  # type: ignore[attr-defined]
    (line,) = stream.getvalue().splitlines()
    assert line[8:] == (' WARNING seat held  booking=b-1 correlation=c-1 step=ReserveSeats cabin=FIRST '
                        'note="two words" seat=12A')
    assert line[2] == ":" and line[5] == ":"


def test_json_logs_stay_when_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOG_FORMAT", "json")
    assert console.readable_logs_requested() is False
    monkeypatch.delenv("LOG_FORMAT")
    assert console.readable_logs_requested() is True


@pytest.mark.parametrize("error", [BrokenPipeError(32, "Broken pipe"), ConnectionResetError(104, "reset")])
def test_a_client_that_went_away_is_one_line_not_a_traceback(error: Exception, capsys: Any) -> None:
    """GIVEN chalice local's server with the quiet handler WHEN writing the answer fails
    because the client is gone THEN stderr gets one line naming it, and any other error
    still gets socketserver's traceback."""
    from chalice.local import ThreadedHTTPServer

    console._quiet_disconnects()
    server = ThreadedHTTPServer.__new__(ThreadedHTTPServer)
    try:
        raise error
    except OSError:
        server.handle_error(None, ("127.0.0.1", 5000))
    err = capsys.readouterr().err
    assert err == f"127.0.0.1 went away before the answer was sent ({type(error).__name__})\n"
    try:
        raise ValueError("a real bug")
    except ValueError:
        server.handle_error(None, ("127.0.0.1", 5000))
    assert "Traceback" in capsys.readouterr().err
