"""The step log: one small item per (booking, step or compensation), with its status
(SUCCEEDED / COMPENSATED / FAILED / TIMED_OUT, or RUNNING), timestamps, attempt count,
result or error. The only module that writes it.

An attempt is written once, when it ends. A forward step that commits a transaction adds
its outcome to it as one more part (``transact``), so its entry says it succeeded exactly
when its effect committed, and no one reads a confirmed booking whose ConfirmBooking entry
says otherwise. Any other attempt gets one write of its outcome after its work
(``mark_finished``: 1 WRU, where a part of a transaction costs 2; the compensations take
that, as recovery re-runs whatever is not COMPENSATED and a re-run changes nothing), a
failed attempt one of its error (``mark_failed``). There is no RUNNING write before the
work: it cost a request and a WRU per step, and nothing needs it. What the saga decides
about a task that never said how it ended (a timeout, a crash) is its verdict
(``mark_ended``, from RecordFailure / RecordCancellation), written whether or not the task
left an entry; the saga's error routing and recovery read that, never RUNNING.

Only an attempt with an injected transient, hang or timeout fault announces itself first
(``begin(announce=True)``, RUNNING): ``transient`` must know whether it is the first
attempt, and ``hang`` and ``timeout`` stand for attempts that may never end by themselves. So ``attempts`` counts
the attempts that ended by themselves or announced themselves; one the Lambda service
stopped (a real timeout) shows in the saga's verdict, not in the count.

It sits below the services: the step runner, the services whose transactions carry their
outcome, the terminal bookkeeping and recovery all call it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from chalicelib import clock, db
from chalicelib.errors import ConditionFailed
from chalicelib.logs import logger
from chalicelib.vocabulary import STATES_TIMEOUT, StepStatus, is_compensation

STEPS, COMPENSATIONS = "steps", "compensations"  # the two logs of a booking
_NAMES = {"#status": "status", "#result": "result", "#error": "error"}
# The saga's verdict stands over any attempt that began before it (a late one); an
# attempt begun after it (recovery re-running a compensation) records its own outcome.
_NOT_OVERRULED = "attribute_not_exists(verdict_at) OR verdict_at < :started"


def _log_of(name: str) -> str:
    return COMPENSATIONS if is_compensation(name) else STEPS


def _key(booking_id: str, name: str) -> dict[str, str]:
    return db.step_log_key(booking_id, _log_of(name), name)


def finished_status(name: str) -> StepStatus:
    return StepStatus.COMPENSATED if is_compensation(name) else StepStatus.SUCCEEDED


# --- One attempt of a step or compensation ----------------------------------------------
@dataclass
class Attempt:
    """An attempt the step runner is making: what its entry needs when it ends."""

    booking_id: str
    name: str
    started_at: str
    number: int | None = None  # known when it announced itself (RUNNING, counted, before the work)
    recorded: bool = False  # its outcome went into its step's own transaction

    def counting(self) -> str:
        """The clause that counts this attempt, unless its announcement already did."""
        return "" if self.number is not None else " ADD attempts :one"


_current: ContextVar[Attempt | None] = ContextVar("step_log_attempt", default=None)


def begin(booking_id: str, name: str, *, announce: bool = False) -> Attempt:
    """A new attempt; ``announce`` writes it RUNNING first and numbers it (1 for the first)."""
    attempt = Attempt(booking_id, name, clock.now_iso())
    if announce:
        updated = db.update(
            "step_log", _key(booking_id, name),
            "SET #status = :running, started_at = if_not_exists(started_at, :now), attempt_started_at = :now "
            "ADD attempts :one REMOVE finished_at, #error",
            names={"#status": "status", "#error": "error"},
            values={":running": StepStatus.RUNNING, ":now": attempt.started_at, ":one": 1},
            returning="UPDATED_NEW",  # just the attempt count
        )
        attempt.number = int(updated["attempts"])
    return attempt


@contextlib.contextmanager
def attempting(attempt: Attempt) -> Iterator[Attempt]:
    """While the step's work runs, ``transact`` adds ``attempt``'s outcome to its transaction."""
    token = _current.set(attempt)
    try:
        yield attempt
    finally:
        _current.reset(token)


def _outcome(attempt: Attempt, result: dict[str, Any]) -> db.Update:
    return db.Update(
        "step_log", _key(attempt.booking_id, attempt.name),
        "SET #status = :status, started_at = if_not_exists(started_at, :started), attempt_started_at = :started, "
        f"finished_at = :now, #result = :result REMOVE #error{attempt.counting()}",
        names=_NAMES,
        values={":status": finished_status(attempt.name), ":started": attempt.started_at, ":now": clock.now_iso(),
                ":result": result, **({":one": 1} if attempt.number is None else {})},
    )


def transact(result: dict[str, Any], **parts: db.Write) -> dict[str, Any]:
    """``db.transact(**parts)`` with the running attempt's outcome (``result``) as one more
    part, ``step_log``: the step's effect and its entry commit together. Returns ``result``.
    Outside an attempt (no step runner around), just the parts.

    The part has no condition: a step arriving after the saga gave up on it cannot commit
    anyway, because its compensation left a marker its own parts check."""
    attempt = _current.get()
    if attempt is None:
        db.transact(**parts)
        return result
    db.transact(**parts, step_log=_outcome(attempt, result))
    attempt.recorded = True
    return result


def mark_finished(attempt: Attempt, result: dict[str, Any]) -> bool:
    """Record success on its own (a step whose outcome was not in a transaction). Returns
    False when the saga gave up on this attempt meanwhile (its verdict stands)."""
    write = _outcome(attempt, result)
    try:
        db.update(write.table, write.key, write.expression, condition=_NOT_OVERRULED, names=write.names,
                  values=write.values, returning="NONE")
    except ConditionFailed:
        logger.warning("step finished after the saga moved on; its result is not recorded")
        return False
    return True


def mark_failed(attempt: Attempt, error: str, cause: str) -> None:
    """The attempt ended in ``error``: FAILED, unless the saga's verdict came first."""
    with contextlib.suppress(ConditionFailed):  # late: the verdict stands
        db.update(
            "step_log", _key(attempt.booking_id, attempt.name),
            "SET #status = :failed, started_at = if_not_exists(started_at, :started), attempt_started_at = :started, "
            f"finished_at = :now, #error = :error{attempt.counting()}",
            condition=_NOT_OVERRULED, names={"#status": "status", "#error": "error"},
            values={":failed": StepStatus.FAILED, ":started": attempt.started_at, ":now": clock.now_iso(),
                    ":error": {"error": error, "cause": cause}, **({":one": 1} if attempt.number is None else {})},
            returning="NONE",
        )


# --- What the saga decided ----------------------------------------------------------------
def mark_ended(booking_id: str, name: str, error: str, cause: str, *, only_if_unfinished: bool = True) -> None:
    """The saga's verdict on a task that ended in ``error``: TIMED_OUT for States.Timeout,
    else FAILED. Unless told otherwise, only over an entry that is missing or RUNNING: a
    task that recorded its own failure keeps it; one that hung or crashed without a word
    gets an entry all the same, so none is left RUNNING and none is missing."""
    status = StepStatus.TIMED_OUT if error == STATES_TIMEOUT else StepStatus.FAILED
    with contextlib.suppress(ConditionFailed):  # it ended by itself, and said so
        db.update(
            "step_log", _key(booking_id, name),
            "SET #status = :status, finished_at = :now, verdict_at = :now, #error = :error",
            condition="attribute_not_exists(#status) OR #status = :running" if only_if_unfinished else None,
            names={"#status": "status", "#error": "error"},
            values={":status": status, ":now": clock.now_iso(), ":error": {"error": error, "cause": cause},
                    **({":running": StepStatus.RUNNING} if only_if_unfinished else {})},
            returning="NONE",
        )


def read(booking_id: str) -> dict[str, dict[str, dict[str, Any]]]:
    """``{"steps": {name: entry}, "compensations": {name: entry}}``, in one Query of the
    booking's partition."""
    log: dict[str, dict[str, dict[str, Any]]] = {STEPS: {}, COMPENSATIONS: {}}
    for item in db.query("step_log", KeyConditionExpression="booking_id = :id",
                         ExpressionAttributeValues={":id": booking_id}):
        kind, name = item["entry"].split("#", 1)
        log.setdefault(kind, {})[name] = item
    return log
