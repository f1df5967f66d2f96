"""The CloudWatch dashboard and alarms of a stage, as CloudFormation resources to merge
into the deploy template (the metrics are the EMF metrics of chalicelib/observability.py,
namespace BookingSaga, dimensions service and stage).

    python -m deploy.observability --stage dev
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from chalicelib.observability import NAMESPACE, SERVICE
from chalicelib.vocabulary import COMPENSATION_NAMES, STEP_NAMES, BookingStatus, StepStatus

STATE_MACHINE = "BookingStateMachine"  # logical id in deploy/resources.py
ALARM_TOPIC = "AlarmTopic"  # the SNS topic every alarm notifies (subscribe to it: docs/deploy.md)


def stack_scoped(name: str) -> dict[str, str]:
    """A name unique to the stack: two stacks of one stage in one account and region
    (a second dev stack, say) must not fight over an alarm or a dashboard. Dashboards are
    global to the account, so theirs carries the region too."""
    return {"Fn::Sub": f"${{AWS::StackName}}-{name}"}


def _metric(name: str, stage: str, stat: str = "Sum", label: str | None = None, **dimensions: str) -> list[Any]:
    row: list[Any] = [NAMESPACE, name, "service", SERVICE, "stage", stage]
    for key, value in dimensions.items():
        row += [key, value]
    options: dict[str, Any] = {"stat": stat}
    if label:
        options["label"] = label
    return [*row, options]


def _widget(title: str, metrics: list[list[Any]], x: int, y: int, *, view: str = "timeSeries",
            stacked: bool = False, width: int = 12) -> dict[str, Any]:
    return {
        "type": "metric", "x": x, "y": y, "width": width, "height": 6,
        "properties": {"title": title, "metrics": metrics, "view": view, "stacked": stacked,
                       "region": "${AWS::Region}", "period": 60},
    }


def dashboard_body(stage: str) -> dict[str, Any]:
    outcomes = [_metric("BookingsConfirmed", stage, label="confirmed"),
                _metric("BookingsCancelled", stage, label="cancelled")]
    outcomes += [_metric("BookingsFailed", stage, label=f"failed at {step}", failed_step=step)
                 for step in STEP_NAMES]
    durations = [_metric("SagaDuration", stage, stat=stat, label=f"{outcome} {stat}", outcome=outcome)
                 for outcome in (BookingStatus.CONFIRMED, BookingStatus.FAILED) for stat in ("p50", "p99")]
    steps = [_metric("StepDuration", stage, stat="p99", label=step, step=step, status=StepStatus.SUCCEEDED)
             for step in STEP_NAMES]
    compensations = [_metric("CompensationsRun", stage, label=f"{name} run", compensation=name)
                     for name in COMPENSATION_NAMES]
    compensations += [_metric("CompensationsFailed", stage, label=f"{name} failed", compensation=name)
                      for name in COMPENSATION_NAMES]
    compensations.append(_metric("CapturesFailed", stage, label="captures failed (confirmed, money not taken)"))
    executions = [["AWS/States", metric, "StateMachineArn", "${" + STATE_MACHINE + "}", {"stat": "Sum"}]
                  for metric in ("ExecutionsStarted", "ExecutionsSucceeded", "ExecutionsFailed",
                                 "ExecutionsTimedOut")]
    return {"widgets": [
        _widget("Bookings by outcome", outcomes, 0, 0, stacked=True),
        _widget("Saga duration (ms)", durations, 12, 0),
        _widget("Step duration p99 (ms)", steps, 0, 6),
        _widget("Compensations run / failed", compensations, 12, 6),
        _widget("Booking state machine executions", executions, 0, 12, width=24),
    ]}


def _alarm(stage: str, name: str, description: str, metric_name: str, threshold: float,
           dimensions: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "AlarmName": stack_scoped(name),
            "AlarmDescription": description,
            "AlarmActions": [{"Ref": ALARM_TOPIC}],
            "Namespace": NAMESPACE,
            "MetricName": metric_name,
            "Dimensions": [{"Name": key, "Value": value}
                           for key, value in {"service": SERVICE, "stage": stage, **(dimensions or {})}.items()],
            "Statistic": "Sum",
            "Period": 60,
            "EvaluationPeriods": 1,
            "Threshold": threshold,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "TreatMissingData": "notBreaching",
        },
    }


def dashboard_and_alarms(stage: str) -> dict[str, Any]:
    """CloudFormation ``Resources`` for ``stage``: one dashboard and the alarms.

    A compensation failure is per compensation (its own dimension), so there is one
    alarm per compensation; any failed attempt alarms (the attempt may be retried, but a
    compensation that fails at all deserves a look: RecordFailure dead-letters the ones
    that exhausted their retries). One on captures that failed after their retries (a
    confirmed booking whose money was not taken, dead-lettered for the operator's recover).
    Plus an alarm on booking executions that timed out.
    """
    resources: dict[str, Any] = {
        ALARM_TOPIC: {
            "Type": "AWS::SNS::Topic",
            # No TopicName: CloudFormation names it after the stack, so it is the stack's own.
            "Properties": {"DisplayName": f"{SERVICE} {stage} alarms"},
        },
        "BookingSagaDashboard": {
            "Type": "AWS::CloudWatch::Dashboard",
            "Properties": {
                "DashboardName": stack_scoped("${AWS::Region}"),
                "DashboardBody": {"Fn::Sub": json.dumps(dashboard_body(stage))},
            },
        },
    }
    for name in COMPENSATION_NAMES:
        resources[f"{name}FailedAlarm"] = _alarm(
            stage, f"{name}-failed",
            f"{name} failed on {stage}: check the booking's step log and the dead letters table.",
            "CompensationsFailed", 1, {"compensation": name})
    resources["CapturesFailedAlarm"] = _alarm(
        stage, "captures-failed",
        f"A confirmed booking's capture failed after its retries on {stage}: the money is not taken until an "
        "operator recovers it (the dead letters table names the booking).",
        "CapturesFailed", 1)
    resources["ExecutionsTimedOutAlarm"] = {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "AlarmName": stack_scoped("executions-timed-out"),
            "AlarmDescription": f"Booking executions timed out on {stage}.",
            "AlarmActions": [{"Ref": ALARM_TOPIC}],
            "Namespace": "AWS/States",
            "MetricName": "ExecutionsTimedOut",
            "Dimensions": [{"Name": "StateMachineArn", "Value": {"Ref": STATE_MACHINE}}],
            "Statistic": "Sum", "Period": 300, "EvaluationPeriods": 1, "Threshold": 1,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold", "TreatMissingData": "notBreaching",
        },
    }
    return resources


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stage", default="dev")
    args = parser.parse_args()
    json.dump({"Resources": dashboard_and_alarms(args.stage)}, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
