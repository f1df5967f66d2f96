"""What every saga Lambda does around its domain function: bind the booking's ids to
the logs, record the attempt in the step log, honour ``simulate_failure``, and let
errors escape under their own class name (the error name the state machine's Catch
matches).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from chalicelib import config, observability, step_log
from chalicelib.errors import SimulatedFailure, SimulatedHang, TransientStepError
from chalicelib.logs import bound, logger
from chalicelib.models import StepInput, fault_for
from chalicelib.vocabulary import AfterPivot, Bookkeeping, Compensation, FailureMode, Step, StepStatus, Task, entry_name

StepFunction = Callable[[StepInput], dict[str, Any]]
# A transient failure must know whether this is the first attempt; a hang or a timeout
# may never end by itself. A permanent failure ends, and says so, like any other.
_ANNOUNCED = frozenset({FailureMode.TRANSIENT, FailureMode.HANG, FailureMode.TIMEOUT})


def injected_mode(step: StepInput, task: Task) -> str | None:
    """The failure to simulate at ``task`` (on the step's leg), if the stage allows fault
    injection. One that names a passenger is the service's to inject, inside its
    transaction (seats.reserve_seats)."""
    if not config.fault_injection_enabled():
        return None
    mode, passenger = fault_for(step.simulate_failure, task, step.leg)
    return mode if passenger is None else None


def _fail_if_asked(name: str, mode: str | None, attempt: int) -> None:
    if mode == FailureMode.PERMANENT:
        raise SimulatedFailure(f"{name} failed on purpose (simulate_failure: permanent)")
    if mode == FailureMode.TRANSIENT and attempt == 1:
        raise TransientStepError(f"{name} failed on purpose, first attempt only (simulate_failure: transient)")


def _outlast_the_timeout(when: str) -> None:
    """Sleep past the task's TimeoutSeconds, as a call to a service that never answers."""
    logger.warning(f"simulating a hang {when} the work", extra={"seconds": config.simulated_hang_seconds()})
    time.sleep(config.simulated_hang_seconds())


def _hang(name: str) -> None:
    """Hang before any work; then give up without writing anything (the Lambda would
    have been stopped), so the step log shows what the saga decided when it timed out."""
    _outlast_the_timeout("before")
    raise SimulatedHang(f"{name} hung before reaching its service (simulate_failure: hang)")


def run(task: Step | AfterPivot | Compensation, work: StepFunction, event: dict[str, Any]) -> dict[str, Any]:
    """Run one saga step or compensation on ``event``, recording the attempt in the step
    log when it ends: in the step's own transaction when it writes one, else on its own."""
    step = StepInput.from_event(event)
    name = entry_name(task, step.leg)  # a per-leg task's entry is its leg's: ReserveSeats#1
    with bound(booking_id=step.booking_id, correlation_id=step.correlation_id, step=name):
        mode = injected_mode(step, task)
        # Only these injected faults announce the attempt first (step_log's docstring says why).
        attempt = step_log.begin(step.booking_id, name, announce=mode in _ANNOUNCED)
        logger.info("step started", extra={"attempt": attempt.number})
        if mode == FailureMode.HANG:
            _hang(name)
        started = time.perf_counter()
        try:
            _fail_if_asked(name, mode, attempt.number or 1)
            with observability.subsegment(task.name, booking_id=step.booking_id), step_log.attempting(attempt):
                result = work(step)
        except Exception as exc:
            step_log.mark_failed(attempt, type(exc).__name__, str(exc))
            logger.warning("step failed", extra={"error": type(exc).__name__, "cause": str(exc)})
            observability.step_finished(task.name, StepStatus.FAILED, (time.perf_counter() - started) * 1000)
            raise
        if mode == FailureMode.TIMEOUT:
            # The effect has happened; now outlast the task's TimeoutSeconds, as a
            # gateway call that hangs would. The saga must compensate this step too.
            _outlast_the_timeout("after")
        if not attempt.recorded:
            step_log.mark_finished(attempt, result)
        status = step_log.finished_status(name)
        logger.info("step finished", extra={"status": status})
        observability.step_finished(task.name, status, (time.perf_counter() - started) * 1000)
        return result


def run_bookkeeping(task: Bookkeeping, work: StepFunction, event: dict[str, Any]) -> dict[str, Any]:
    """RecordFailure / RecordCaptureFailure / RecordCancellation: logged with the booking's ids, no step log entry."""
    step = StepInput.from_event(event)
    with bound(booking_id=step.booking_id, correlation_id=step.correlation_id, step=task.name):
        return work(step)
