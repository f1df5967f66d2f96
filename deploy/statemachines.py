"""Generate statemachine.json and cancellation.json from the saga's vocabulary
(chalicelib/vocabulary.py). The generated files are committed: they are what a learner
opens and what the Step Functions console shows; tests/saga/test_definition.py fails
when a committed file differs from what this writes.

    python -m deploy.statemachines           # rewrite both files and the README's drawing
    python -m deploy.statemachines --check   # exit 1 if any is out of date

The policy is the same for every task, so it is written once here:

* a forward step retries the retryable errors with backoff and jitter; the pivot
  also retries a timeout, since its commit may have happened and a retry finds out;
* a forward step has two Catch clauses, both recording the error under
  ``$.<Step>Error``: an error that proves the step changed nothing goes to the
  compensation of the previous step, anything else to the step's own compensation;
* a compensation retries everything more often than a forward step, and when it still
  fails the chain goes on (its Catch and its Next are the same state);
* a step that runs only under a condition (RedeemPoints) sits behind a Choice, and so
  does its compensation;
* a step after the pivot (CapturePayment) retries as the pivot does and is never
  compensated: when it still fails, its bookkeeping task records that for an operator
  and the booking is confirmed all the same;
* a task that runs per leg (ReserveSeats, ReleaseSeats) is an inline Map over the legs,
  one invocation per leg, with the Catch clauses inside its item processor: each leg
  reports its outcome as data (held, or failed: provably nothing held, or in doubt), and
  the Map itself succeeds. A Choice after ReserveSeats sends a booking any of whose legs
  failed to ReleaseSeats (which releases the legs that held or may have) and so to
  RecordFailure; it also stands in for the next step's own Choice (one transition less).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from chalicelib.vocabulary import (
    AFTER_PIVOT,
    ANY_LEG_FAILED,
    BOOKING_STEPS,
    CANCELLATION_STEPS,
    COMPENSATION_ORDER,
    LEG_FAILED,
    LEG_HELD,
    NOTHING_HAPPENED,
    RECORD_CANCELLATION,
    RECORD_FAILURE,
    RETRYABLE_ERRORS,
    STATES_TIMEOUT,
    STEP_OF_COMPENSATION,
    BookingStatus,
    Bookkeeping,
    Compensation,
    SagaKind,
    Step,
    Task,
)
from deploy import asl

TIMEOUT_SECONDS = 10
FORWARD_RETRY = {
    "ErrorEquals": list(RETRYABLE_ERRORS),
    "IntervalSeconds": 1, "MaxAttempts": 3, "BackoffRate": 2.0, "JitterStrategy": "FULL",
}
PIVOT_TIMEOUT_RETRY = {"ErrorEquals": [STATES_TIMEOUT], "IntervalSeconds": 1, "MaxAttempts": 2, "BackoffRate": 2.0}
COMPENSATION_RETRY = {
    "ErrorEquals": ["States.ALL"], "IntervalSeconds": 1, "MaxAttempts": 5, "BackoffRate": 2.0, "MaxDelaySeconds": 8,
}

# The states that end the executions (not tasks, so not in the vocabulary).
BOOKING_CONFIRMED, BOOKING_FAILED, BOOKKEEPING_FAILED = "BookingConfirmed", "BookingFailed", "BookkeepingFailed"
CANCELLATION_OUTCOME, BOOKING_CANCELLED = "CancellationOutcome", "BookingCancelled"
CANCELLATION_NEEDS_ATTENTION = "CancellationNeedsAttention"
CAPTURE_FAILURE_UNRECORDED = "CaptureFailureUnrecorded"
#: Where the pivot leads once it committed: the steps after it, then the end.
AFTER_THE_PIVOT = AFTER_PIVOT[0].name if AFTER_PIVOT else BOOKING_CONFIRMED


def _task(task: Task, result_key: str, *, retry: list[dict[str, Any]], catch: list[dict[str, Any]] | None,
          next_state: str) -> dict[str, Any]:
    state: dict[str, Any] = {
        "Type": "Task",
        "Comment": task.summary,
        "Resource": "${" + asl.placeholder_for(task.function) + "}",
        "ResultPath": f"$.{result_key}",
        "TimeoutSeconds": TIMEOUT_SECONDS,
        "Retry": retry,
    }
    if catch:
        state["Catch"] = catch
    state["Next"] = next_state
    return state


# --- Tasks that run per leg: an inline Map over the legs ------------------------------------
def _leg_state(task: Task, suffix: str = "") -> str:
    """A state inside the task's item processor (state names are unique machine-wide)."""
    return f"{task.name}Leg{suffix}"


def _leg_outcome(*, held: bool | None, failed: bool | None, error: bool = False,
                 result: tuple[str, ...] = ()) -> dict[str, Any]:
    """One leg's outcome as its iteration outputs it."""
    outcome: dict[str, Any] = {"leg.$": "$.leg", "flight_number.$": "$.flight_number"}
    outcome.update({f"{key}.$": f"$.{key}" for key in result})
    if held is not None:
        outcome[LEG_HELD] = held
    if failed is not None:
        outcome[LEG_FAILED] = failed
    if error:
        outcome["error.$"] = "$.error"
    return outcome


def _item_selector(*fields: str) -> dict[str, Any]:
    """What each iteration gets: its leg (from the item) and the booking's ids."""
    selector = {f"{key}.$": f"$$.Map.Item.Value.{key}" for key in ("leg", "flight_number", *fields)}
    selector.update({"booking_id.$": "$.booking_id", "correlation_id.$": "$.correlation_id",
                     "simulate_failure.$": "$.simulate_failure"})
    return selector


def _per_leg(task: Task, items_path: str, item_selector: dict[str, Any], processor: dict[str, Any], *,
             result_key: str, result_selector: dict[str, Any], catch: list[dict[str, Any]],
             next_state: str) -> dict[str, Any]:
    return {
        "Type": "Map",
        "Comment": task.summary,
        "ItemsPath": items_path,
        "ItemSelector": item_selector,
        "ItemProcessor": {"ProcessorConfig": {"Mode": "INLINE"}, **processor},
        "ResultSelector": result_selector,
        "ResultPath": f"$.{result_key}",
        "Catch": catch,
        "Next": next_state,
    }


def _reserve_per_leg(step: Step, *, catch: list[dict[str, Any]], next_state: str) -> dict[str, Any]:
    """The forward Map: each leg held (the task's result), or failed with its error, either
    provably holding nothing (an error of NOTHING_HAPPENED) or in doubt (anything else:
    its hold may have landed)."""
    task = _task(step, "result", retry=[FORWARD_RETRY], catch=[
        {"ErrorEquals": list(NOTHING_HAPPENED), "ResultPath": "$.error", "Next": _leg_state(step, "Failed")},
        {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": _leg_state(step, "InDoubt")},
    ], next_state="")
    del task["ResultPath"], task["Next"]
    task["ResultSelector"] = _leg_outcome(held=True, failed=False, result=("seats",))
    task["End"] = True
    processor = {"StartAt": _leg_state(step), "States": {
        _leg_state(step): task,
        _leg_state(step, "Failed"): {"Type": "Pass", "Comment": "Nothing was held on this leg.",
                                     "Parameters": _leg_outcome(held=False, failed=True, error=True), "End": True},
        _leg_state(step, "InDoubt"): {"Type": "Pass", "Comment": "This leg's hold may have landed: release it.",
                                      "Parameters": _leg_outcome(held=True, failed=True, error=True), "End": True},
    }}
    return _per_leg(step, "$.legs", _item_selector("seats") | {"cabin.$": "$.cabin"}, processor,
                    result_key=step.result_key,
                    result_selector={"legs.$": "$",
                                     f"{ANY_LEG_FAILED}.$": f"States.ArrayContains($[*].{LEG_FAILED}, true)"},
                    catch=catch, next_state=next_state)


def _release_per_leg(compensation: Compensation, reserved: Step, *, next_state: str) -> dict[str, Any]:
    """The compensating Map, over what the forward Map reported (or, when it never said, every
    leg: the execution input registers that before it runs): a leg that held nothing is
    skipped; a leg whose release still fails after its retries reports its error, and the
    chain goes on."""
    task = _task(compensation, "result", retry=[COMPENSATION_RETRY], catch=[
        {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": _leg_state(compensation, "Failed")},
    ], next_state="")
    del task["ResultPath"], task["Next"]
    task["End"] = True
    processor = {"StartAt": _leg_state(compensation, "Held"), "States": {
        _leg_state(compensation, "Held"): {
            "Type": "Choice", "Comment": "Only a leg that held seats, or may have, is released.",
            "Choices": [{"Variable": f"$.{LEG_HELD}", "BooleanEquals": False,
                         "Next": _leg_state(compensation, "NothingHeld")}],
            "Default": _leg_state(compensation),
        },
        _leg_state(compensation, "NothingHeld"): {"Type": "Pass", "Parameters": _leg_outcome(held=False, failed=None),
                                                  "End": True},
        _leg_state(compensation): task,
        _leg_state(compensation, "Failed"): {"Type": "Pass", "Parameters": _leg_outcome(held=None, failed=True,
                                                                                        error=True), "End": True},
    }}
    catch = [{"ErrorEquals": ["States.ALL"], "ResultPath": f"$.{compensation.error_key}", "Next": next_state}]
    return _per_leg(compensation, f"$.{reserved.result_key}.legs", _item_selector(LEG_HELD), processor,
                    result_key=compensation.result_key, result_selector={"legs.$": "$"}, catch=catch,
                    next_state=next_state)


def _outcome_name(step: Step) -> str:
    return f"{step.name}Held"


def _choice_name(task: Task) -> str:
    return f"Should{task.name}"


def _choice(task: Task, condition: str, *, otherwise: str, why: str) -> dict[str, Any]:
    return {
        "Type": "Choice",
        "Comment": why,
        "Choices": [{"Variable": f"$.{condition}", "NumericGreaterThan": 0, "Next": task.name}],
        "Default": otherwise,
    }


def _committed_name(pivot: Step) -> str:
    return f"{pivot.name}Committed"


def _committed(pivot: Step, compensation: Compensation, *, otherwise: str) -> dict[str, Any]:
    return {
        "Type": "Choice",
        "Comment": f"Had {pivot.name} committed? Then it stands and the booking is confirmed; else the steps "
                   "before it are compensated.",
        "Choices": [{"Variable": f"$.{compensation.result_key}.confirmed", "BooleanEquals": True,
                     "Next": AFTER_THE_PIVOT}],
        "Default": otherwise,
    }


def _compensation_chain(chain: tuple[Compensation, ...], end: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The states of the compensations of ``chain`` in order, each continuing to the
    next whatever happens, then ``end``; and the state that enters each compensation
    (its Choice when it is conditional)."""
    entries: dict[str, str] = {}
    built: list[tuple[str, dict[str, Any]]] = []
    next_state = end
    for compensation in reversed(chain):
        step = STEP_OF_COMPENSATION[compensation.name]
        after, on_error = next_state, next_state
        if step.pivot:
            # The pivot's outcome was unknown: a confirmation that committed stands, and
            # while it is unknown (this task failed too) nothing else is compensated.
            after, on_error = _committed_name(step), end
            built.append((after, _committed(step, compensation, otherwise=next_state)))
        catch = [{"ErrorEquals": ["States.ALL"], "ResultPath": f"$.{compensation.error_key}", "Next": on_error}]
        if compensation.per_leg:
            built.append((compensation.name, _release_per_leg(compensation, step, next_state=after)))
        else:
            built.append((compensation.name, _task(compensation, compensation.result_key,
                                                   retry=[COMPENSATION_RETRY], catch=catch, next_state=after)))
        entries[compensation.name] = compensation.name
        if step.runs_if_positive:
            why = f"{compensation.name} runs only when {step.name} could have run."
            built.append((_choice_name(compensation),
                          _choice(compensation, step.runs_if_positive, otherwise=next_state, why=why)))
            entries[compensation.name] = _choice_name(compensation)
        next_state = entries[compensation.name]
    return dict(reversed(built)), entries


def _entry_of(step: Step) -> str:
    return _choice_name(step) if step.runs_if_positive else step.name


def _after(index: int) -> str:
    """The state that follows the forward step at ``index`` (and its Choice's Default)."""
    return _entry_of(BOOKING_STEPS[index + 1]) if index + 1 < len(BOOKING_STEPS) else AFTER_THE_PIVOT


def _held_every_leg(index: int, step: Step) -> dict[str, Any]:
    """After a per-leg step: any leg failed -> its own compensation (the legs that held);
    else on, deciding the next step's condition here as its own Choice would."""
    choices = [{"Variable": f"$.{step.result_key}.{ANY_LEG_FAILED}", "BooleanEquals": True,
                "Next": step.compensation.name}]
    default = _after(index)
    following = BOOKING_STEPS[index + 1] if index + 1 < len(BOOKING_STEPS) else None
    if following is not None and following.runs_if_positive:
        choices.append({"Variable": f"$.{following.runs_if_positive}", "NumericGreaterThan": 0,
                        "Next": following.name})
        default = _after(index + 1)
    return {"Type": "Choice",
            "Comment": f"Did {step.name} fail on any leg? Then release the legs that held, and nothing else ran."
                       + (f" Else {following.name} runs only when the booking's {following.runs_if_positive} > 0."
                          if following is not None and following.runs_if_positive else ""),
            "Choices": choices, "Default": default}


def _forward_steps(compensation_entries: dict[str, str]) -> dict[str, Any]:
    states: dict[str, Any] = {}
    for index, step in enumerate(BOOKING_STEPS):
        previous = BOOKING_STEPS[index - 1] if index else None
        if step.per_leg:
            # Every leg's own errors are caught inside; the Map failing as a whole may have
            # held anything: its own compensation, over every leg.
            catch = [{"ErrorEquals": ["States.ALL"], "ResultPath": f"$.{step.error_key}",
                      "Next": step.compensation.name}]
            states[step.name] = _reserve_per_leg(step, catch=catch, next_state=_outcome_name(step))
            states[_outcome_name(step)] = _held_every_leg(index, step)
            continue
        if step.runs_if_positive and not (previous and previous.per_leg):
            states[_choice_name(step)] = _choice(
                step, step.runs_if_positive, otherwise=_after(index),
                why=f"{step.name} runs only when the booking's {step.runs_if_positive} > 0.",
            )
        catch = [
            {"ErrorEquals": list(NOTHING_HAPPENED), "ResultPath": f"$.{step.error_key}",
             "Next": compensation_entries[previous.compensation.name] if previous else RECORD_FAILURE.name},
            {"ErrorEquals": ["States.ALL"], "ResultPath": f"$.{step.error_key}", "Next": step.compensation.name},
        ]
        retry = [FORWARD_RETRY, PIVOT_TIMEOUT_RETRY] if step.pivot else [FORWARD_RETRY]
        states[step.name] = _task(step, step.result_key, retry=retry, catch=catch, next_state=_after(index))
    return states


def _after_pivot_steps() -> dict[str, Any]:
    """The steps after the pivot: each retried as the pivot is (its work is idempotent, so
    a retry after a timeout finds what the first attempt did), none compensated. One that
    still fails goes to its bookkeeping task, and the booking is confirmed all the same."""
    states: dict[str, Any] = {}
    for index, step in enumerate(AFTER_PIVOT):
        after = AFTER_PIVOT[index + 1].name if index + 1 < len(AFTER_PIVOT) else BOOKING_CONFIRMED
        catch = [{"ErrorEquals": ["States.ALL"], "ResultPath": f"$.{step.error_key}", "Next": step.on_failure.name}]
        states[step.name] = _task(step, step.result_key, retry=[FORWARD_RETRY, PIVOT_TIMEOUT_RETRY], catch=catch,
                                  next_state=after)
    for index, step in enumerate(AFTER_PIVOT):
        after = AFTER_PIVOT[index + 1].name if index + 1 < len(AFTER_PIVOT) else BOOKING_CONFIRMED
        states[step.on_failure.name] = _bookkeeping(step.on_failure, next_state=after,
                                                    on_error=CAPTURE_FAILURE_UNRECORDED)
    return states


def _bookkeeping(task: Bookkeeping, *, next_state: str, on_error: str | None) -> dict[str, Any]:
    catch = None
    if on_error:
        catch = [{"ErrorEquals": ["States.ALL"], "ResultPath": f"$.{task.error_key}", "Next": on_error}]
    return _task(task, task.result_key, retry=[COMPENSATION_RETRY], catch=catch, next_state=next_state)


def booking_definition() -> dict[str, Any]:
    compensations, entries = _compensation_chain(COMPENSATION_ORDER, RECORD_FAILURE.name)
    states = {
        **_forward_steps(entries),
        **_after_pivot_steps(),
        BOOKING_CONFIRMED: {"Type": "Succeed"},
        **compensations,
        RECORD_FAILURE.name: _bookkeeping(RECORD_FAILURE, next_state=BOOKING_FAILED, on_error=BOOKKEEPING_FAILED),
        BOOKING_FAILED: {
            "Type": "Fail",
            "Comment": "Error and Cause of the forward step that failed (States.Timeout is reported as Timeout: "
                       "the States. prefix is reserved).",
            "ErrorPath": f"$.{RECORD_FAILURE.result_key}.fail_error",
            "CausePath": f"$.{RECORD_FAILURE.result_key}.cause",
        },
        BOOKKEEPING_FAILED: {
            "Type": "Fail",
            "Error": f"{RECORD_FAILURE.name}Failed",
            "Cause": "The compensations ran but the booking could not be marked failed; the invariant checker "
                     "reports it.",
        },
    }
    if AFTER_PIVOT:
        states[CAPTURE_FAILURE_UNRECORDED] = {
            "Type": "Fail",
            "Error": f"{AFTER_PIVOT[0].on_failure.name}Failed",
            "Cause": "The booking is confirmed but a failure after the pivot could not be recorded; the invariant "
                     "checker reports it.",
        }
    names = ", ".join(step.name + (" (optional)" if step.runs_if_positive else "") for step in BOOKING_STEPS)
    after = ", then " + ", ".join(step.name for step in AFTER_PIVOT) + " (never compensated)" if AFTER_PIVOT else ""
    return {
        "Comment": f"Airline booking saga: {names}{after}. A failure runs the compensations of the steps before "
                   "it in reverse order, and the failed step's own compensation unless its error proves it changed "
                   "nothing. Generated from chalicelib/vocabulary.py by deploy/statemachines.py.",
        "StartAt": _entry_of(BOOKING_STEPS[0]),
        "States": states,
    }


def cancellation_definition() -> dict[str, Any]:
    states, entries = _compensation_chain(CANCELLATION_STEPS, RECORD_CANCELLATION.name)
    states[RECORD_CANCELLATION.name] = _bookkeeping(RECORD_CANCELLATION, next_state=CANCELLATION_OUTCOME,
                                                    on_error=None)
    states[CANCELLATION_OUTCOME] = {
        "Type": "Choice",
        "Choices": [{"Variable": f"$.{RECORD_CANCELLATION.result_key}.status", "StringEquals": BookingStatus.CANCELLED,
                     "Next": BOOKING_CANCELLED}],
        "Default": CANCELLATION_NEEDS_ATTENTION,
    }
    states[BOOKING_CANCELLED] = {"Type": "Succeed"}
    states[CANCELLATION_NEEDS_ATTENTION] = {
        "Type": "Fail",
        "Error": "CompensationFailed",
        "Cause": "A compensation failed after its retries; see the dead letters of this booking.",
    }
    chain = ", ".join(compensation.name for compensation in CANCELLATION_STEPS)
    return {
        "Comment": f"Cancel a confirmed booking: {chain}; then record the outcome. Generated from "
                   "chalicelib/vocabulary.py by deploy/statemachines.py.",
        "StartAt": entries[CANCELLATION_STEPS[0].name],
        "States": states,
    }


GENERATORS: dict[str, Callable[[], dict[str, Any]]] = {
    SagaKind.BOOKING: booking_definition, SagaKind.CANCELLATION: cancellation_definition,
}


def render(name: str) -> str:
    return json.dumps(GENERATORS[name](), indent=2, ensure_ascii=False) + "\n"


# --- The README's drawing of the booking saga ---------------------------------------------
README = asl.PROJECT_DIR / "README.md"
MERMAID_BEGIN = "<!-- BEGIN generated by python -m deploy.statemachines: the booking saga -->"
MERMAID_END = "<!-- END generated -->"


def _test(rule: dict[str, Any]) -> str:
    return rule["Variable"].removeprefix("$.") + (" > 0" if "NumericGreaterThan" in rule else "")


def _node(name: str, state: dict[str, Any]) -> str:
    if state["Type"] == "Choice":
        return f"{name}{{{' / '.join(_test(rule) for rule in state['Choices'])}?}}"
    if state["Type"] in ("Succeed", "Fail"):
        return f"{name}([{state['Type']}])"
    if state["Type"] == "Map":
        return f"{name}[[{name}: each leg]]"
    return name


def mermaid(definition: dict[str, Any]) -> str:
    """A flowchart of ``definition``: solid arrows for the normal flow, dotted ones for a
    Catch (the error proves the step did nothing, or its effect may have happened). A
    per-leg Map is one node; its item processor is not drawn."""
    states = definition["States"]
    lines = ["flowchart TD"]
    for name, state in states.items():
        node = _node(name, state)
        if state["Type"] == "Choice":
            rules = state["Choices"]
            for rule in rules:
                label = "yes" if len(rules) == 1 else _test(rule)
                lines.append(f"    {node} -- {label} --> {_node(rule['Next'], states[rule['Next']])}")
            otherwise = "no" if len(rules) == 1 else "otherwise"
            lines.append(f"    {node} -- {otherwise} --> {_node(state['Default'], states[state['Default']])}")
            continue
        if "Next" in state:
            lines.append(f"    {node} --> {_node(state['Next'], states[state['Next']])}")
        catches = state.get("Catch", [])
        for catch in catches:
            if catch["Next"] == state.get("Next"):
                continue  # a compensation's chain goes on either way
            label = "fails"
            if len(catches) > 1:  # a forward step: did its effect happen?
                label = "may have happened" if catch["ErrorEquals"] == ["States.ALL"] else "did nothing"
            lines.append(f"    {node} -. {label} .-> {_node(catch['Next'], states[catch['Next']])}")
    return "\n".join(lines)


def _chain(tasks: tuple[Task, ...]) -> str:
    return " → ".join(f"**{task.name}**" for task in tasks)


def saga_in_words() -> str:
    """The saga's steps and chains as the README's opening lines say them."""
    forward = " → ".join([
        *(f"**{step.name}**" + (f" (only when `{step.runs_if_positive}` > 0)" if step.runs_if_positive else "")
          + (" (a Map: one invocation per leg)" if step.per_leg else "")
          + (" (the pivot: tickets issued)" if step.pivot else "")
          for step in BOOKING_STEPS),
        *(f"**{step.name}** (after the pivot: retried, never compensated; still failing, "
          f"**{step.on_failure.name}**)" for step in AFTER_PIVOT),
    ])
    return (f"Forward: {forward}.\n\n"
            f"Compensations, in the order a failure runs them: {_chain(COMPENSATION_ORDER)}.\n\n"
            f"Cancelling a confirmed booking (`cancellation.json`): {_chain(CANCELLATION_STEPS)}.\n")


def render_readme(text: str) -> str:
    """README.md with the text between its markers replaced by the current one."""
    begin, end = text.index(MERMAID_BEGIN), text.index(MERMAID_END)
    block = f"{MERMAID_BEGIN}\n{saga_in_words()}\n```mermaid\n{mermaid(booking_definition())}\n```\n"
    return text[:begin] + block + text[end:]


def out_of_date() -> list[str]:
    stale = [asl.DEFINITION_FILES[name].name for name in GENERATORS if asl.text(name) != render(name)]
    readme = README.read_text()
    return stale + ([README.name] if render_readme(readme) != readme else [])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="exit 1 if a committed file is out of date")
    args = parser.parse_args(argv)
    if args.check:
        stale = out_of_date()
        for name in stale:
            print(f"{name} is out of date: run python -m deploy.statemachines", file=sys.stderr)
        return 1 if stale else 0
    for name in GENERATORS:
        asl.DEFINITION_FILES[name].write_text(render(name))
        print(asl.DEFINITION_FILES[name])
    README.write_text(render_readme(README.read_text()))
    print(README)
    return 0


if __name__ == "__main__":
    sys.exit(main())
