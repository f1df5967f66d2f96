"""The CloudFormation resources `chalice package --merge-template` adds to Chalice's
own template, generated from the project's single sources:

* the tables from chalicelib/schema.py (TABLES);
* the two state machines from statemachine.json / cancellation.json, their
  ``${XArn}`` placeholders mapped to ``Fn::GetAtt [X, Arn]`` (deploy/asl.py);
* one IAM role per Lambda function, allowed only the DynamoDB actions on the tables
  that function uses (FUNCTION_ACCESS below), and one role per state machine allowed
  to invoke only the functions of its definition;
* each function's environment: the physical names of its tables (``Ref``) and, for
  the API handler, the state machines' ARNs (``Ref``). Chalice's own variables
  (.chalice/config.json) survive: the merge is a deep merge of dicts.

    python -m deploy.resources --stage dev > build/resources-dev.json

Chalice's stage config must say ``"manage_iam_role": false`` (and some placeholder
``iam_role_arn``), which this template overrides per function with ``Fn::GetAtt``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from typing import Any

from chalicelib import config
from chalicelib.schema import TABLES, TABLES_BY_NAME
from chalicelib.vocabulary import COMPENSATION_ORDER, TASKS, Bookkeeping, SagaKind, service_module
from deploy import asl
from deploy.observability import dashboard_and_alarms

API_HANDLER = "APIHandler"  # Chalice's logical id of the function behind the REST API


@dataclass(frozen=True)
class StageSettings:
    # STANDARD keeps every execution's history (GET /bookings/{id}/history reads it)
    # and de-duplicates execution names. EXPRESS is cheaper at volume, but its
    # executions cannot be described (the history route then has nothing to show).
    state_machine_type: str = "STANDARD"
    state_machine_log_level: str = "ALL"  # ALL | ERROR | FATAL
    log_retention_days: int = 14
    retain_tables: bool = False  # DeletionPolicy/UpdateReplacePolicy Retain on the tables


STAGES = {
    "dev": StageSettings(),
    "prod": StageSettings(state_machine_log_level="ERROR", log_retention_days=90, retain_tables=True),
}

GET, QUERY, SCAN, PUT, UPDATE, CHECK = (
    f"dynamodb:{action}" for action in ("GetItem", "Query", "Scan", "PutItem", "UpdateItem", "ConditionCheckItem")
)

Access = dict[str, tuple[str, ...]]  # table -> DynamoDB actions


def _saga_task_access() -> dict[str, Access]:
    """Each saga task's table access, as its service declares it (``TABLE_ACCESS`` in
    chalicelib/<service>.py), plus its own step-log entry for every step and
    compensation (steps.run -> step_log: UpdateItem)."""
    access = {}
    for task in TASKS.values():
        declared = service_module(task).TABLE_ACCESS[task]
        tables = {table: tuple(f"dynamodb:{action}" for action in actions) for table, actions in declared.items()}
        if not isinstance(task, Bookkeeping):
            tables["step_log"] = tuple(dict.fromkeys((*tables.get("step_log", ()), UPDATE)))
        access[task.function] = tables
    return access


def _merged(*accesses: Access) -> Access:
    merged: dict[str, dict[str, None]] = {}
    for access in accesses:
        for table, actions in access.items():
            merged.setdefault(table, {}).update(dict.fromkeys(actions))
    return {table: tuple(actions) for table, actions in merged.items()}


SAGA_TASK_ACCESS = _saga_task_access()
# Recovery and the sweeper run compensations in their own process (recovery.py): their
# roles need what every compensation needs, whatever a new compensation touches.
COMPENSATIONS_ACCESS = _merged(*(SAGA_TASK_ACCESS[compensation.function] for compensation in COMPENSATION_ORDER))

# What each function does to which table (TransactWriteItems needs the action of each of
# its parts). The deploy rehearsal (tests/deploy/test_rehearsal.py) records every call and
# fails on one not listed.
FUNCTION_ACCESS: dict[str, Access] = {
    **SAGA_TASK_ACCESS,
    # @app.schedule: releases expired holds and runs the compensations of stale
    # bookings in process (chalicelib/recovery.py).
    "sweep_expired_holds": _merged(COMPENSATIONS_ACCESS, {
        "step_log": (QUERY,),  # which step was running
        "seats": (SCAN, UPDATE),  # expired holds, released
        "bookings": (GET, UPDATE),  # a stale booking, failed
    }),
    # Invoked by operators (recovery.operate): re-runs compensations, sweeps holds,
    # scans every table but idempotency for the invariant checker.
    "operator": _merged(COMPENSATIONS_ACCESS, {
        "step_log": (QUERY,),
        "flights": (SCAN,),
        "seats": (SCAN, QUERY, UPDATE),  # QUERY: one booking's seats, for its scoped check
        "bookings": (GET, SCAN, UPDATE),
        "payments": (SCAN,),
        "loyalty": (SCAN, QUERY),  # QUERY: one account and its ledger
        "dead_letters": (QUERY, SCAN, UPDATE),
    }),
    # The public routes only (chalicelib/api.py, booking_record.create, booking_view, seats,
    # loyalty): no /admin routes are deployed (config.operator_routes_enabled).
    API_HANDLER: {
        "flights": (GET, SCAN),
        "seats": (GET, QUERY),
        "bookings": (GET, PUT, UPDATE),
        "step_log": (QUERY,),
        "idempotency": (GET, PUT),
        "payments": (GET, PUT, UPDATE),  # the payment request, with the booking (withdrawn if no saga starts)
        "loyalty": (GET, QUERY),
    },
}

# What each function may do with the state machines (and gets their ARNs for):
# name -> {state machine: (actions on the machine, actions on its executions)}.
STATE_MACHINE_ACCESS: dict[str, dict[str, tuple[tuple[str, ...], tuple[str, ...]]]] = {
    API_HANDLER: {
        machine: (("states:DescribeStateMachine", "states:StartExecution"),
                  ("states:DescribeExecution", "states:GetExecutionHistory"))
        for machine in SagaKind
    },
    # Is a stale booking's saga still running? (saga.is_running)
    "sweep_expired_holds": {SagaKind.BOOKING: ((), ("states:DescribeExecution",))},
    # The sweep, and the invariant checker's "PENDING without a running execution".
    "operator": {machine: ((), ("states:DescribeExecution",)) for machine in SagaKind},
}

# name in asl.DEFINITION_FILES -> (logical id, env var of its ARN)
STATE_MACHINES: dict[str, tuple[str, str]] = {
    SagaKind.BOOKING: ("BookingStateMachine", config.BOOKING_STATE_MACHINE_ENV),
    SagaKind.CANCELLATION: ("CancellationStateMachine", config.CANCELLATION_STATE_MACHINE_ENV),
}

LAMBDA_TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}
STATES_TRUST = {
    "Version": "2012-10-17",
    "Statement": [{
        "Effect": "Allow",
        "Principal": {"Service": "states.amazonaws.com"},
        "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}},
    }],
}
# X-Ray and the CloudWatch Logs delivery APIs of Step Functions take no resource ARN.
XRAY_WRITE = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
XRAY_STATES = [*XRAY_WRITE, "xray:GetSamplingRules", "xray:GetSamplingTargets"]
LOG_DELIVERY = [
    "logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery", "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries", "logs:PutResourcePolicy", "logs:DescribeResourcePolicies", "logs:DescribeLogGroups",
]


def function_logical_id(name: str) -> str:
    return name if name == API_HANDLER else asl.logical_id(name)


def get_arn(logical_id: str) -> dict[str, Any]:
    return {"Fn::GetAtt": [logical_id, "Arn"]}


def _document(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def _allow(actions: list[str], resources: list[Any] | str, sid: str | None = None) -> dict[str, Any]:
    statement: dict[str, Any] = {"Effect": "Allow", "Action": actions, "Resource": resources}
    if sid:
        statement["Sid"] = sid
    return statement


def definition_substitutions(name: str) -> dict[str, Any]:
    """``{"ReserveSeatArn": {"Fn::GetAtt": ["ReserveSeat", "Arn"]}, ...}`` for one definition."""
    substitutions = {}
    for placeholder in sorted(asl.placeholders(asl.text(name))):
        if not placeholder.endswith("Arn"):
            file_name = asl.DEFINITION_FILES[name].name
            raise ValueError(f"{file_name}: placeholder ${{{placeholder}}} is not ${{<Function>Arn}}")
        substitutions[placeholder] = get_arn(placeholder[: -len("Arn")])
    return substitutions


def app_function_names() -> list[str]:
    """Every function app.py defines besides the API handler: ``@app.lambda_function``
    and event sources such as ``@app.schedule`` (importing it never starts moto here)."""
    os.environ["EMBEDDED_AWS"] = "false"
    import app

    return [function.name for function in app.app.pure_lambda_functions] + [
        source.name for source in app.app.event_sources
    ]


def check_access(function_names: list[str]) -> None:
    declared = set(FUNCTION_ACCESS) - {API_HANDLER}
    if declared != set(function_names):
        missing, extra = sorted(set(function_names) - declared), sorted(declared - set(function_names))
        raise ValueError(f"FUNCTION_ACCESS out of date: no entry for {missing}, entries for unknown {extra}")


def _tables(settings: StageSettings) -> dict[str, Any]:
    resources = {}
    for table in TABLES:
        properties: dict[str, Any] = {
            "BillingMode": "PAY_PER_REQUEST",
            "KeySchema": table.key_schema(),
            "AttributeDefinitions": table.attribute_definitions(),
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
        }
        if table.ttl_attribute:
            properties["TimeToLiveSpecification"] = {"AttributeName": table.ttl_attribute, "Enabled": True}
        policy = "Retain" if settings.retain_tables else "Delete"
        resource: dict[str, Any] = {"Type": "AWS::DynamoDB::Table", "Properties": properties,
                                    "DeletionPolicy": policy, "UpdateReplacePolicy": policy}
        resources[table.logical_id] = resource
    return resources


def _function_policy(name: str) -> dict[str, Any]:
    statements = [
        _allow(sorted(actions), [get_arn(TABLES_BY_NAME[table].logical_id)], sid=f"{table.title().replace('_', '')}")
        for table, actions in sorted(FUNCTION_ACCESS[name].items())
    ]
    for machine, (machine_actions, execution_actions) in sorted(STATE_MACHINE_ACCESS.get(name, {}).items()):
        logical_id = STATE_MACHINES[machine][0]
        if machine_actions:
            statements.append(_allow(sorted(machine_actions), [{"Ref": logical_id}], sid=f"{logical_id}"))
        if execution_actions:
            statements.append(_allow(
                sorted(execution_actions),
                [{"Fn::Sub": f"arn:${{AWS::Partition}}:states:${{AWS::Region}}:${{AWS::AccountId}}:execution:"
                             f"${{{logical_id}.Name}}:*"}],
                sid=f"{logical_id}Executions",
            ))
    statements.append(_allow(XRAY_WRITE, "*", sid="Tracing"))
    return _document(*statements)


def _functions(function_names: list[str], settings: StageSettings) -> dict[str, Any]:
    """Per function: its role, its log group, the policy writing to that log group
    (a separate resource: the log group's name needs the function), and the
    overrides of Chalice's function resource (Role, Environment)."""
    resources: dict[str, Any] = {}
    for name in [*function_names, API_HANDLER]:
        logical_id = function_logical_id(name)
        resources[f"{logical_id}Role"] = {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "AssumeRolePolicyDocument": LAMBDA_TRUST,
                "Policies": [{"PolicyName": "access", "PolicyDocument": _function_policy(name)}],
            },
        }
        resources[f"{logical_id}LogGroup"] = {
            "Type": "AWS::Logs::LogGroup",
            "Properties": {
                "LogGroupName": {"Fn::Sub": f"/aws/lambda/${{{logical_id}}}"},
                "RetentionInDays": settings.log_retention_days,
            },
        }
        resources[f"{logical_id}LogsPolicy"] = {
            "Type": "AWS::IAM::Policy",
            "Properties": {
                "PolicyName": "logs",
                "Roles": [{"Ref": f"{logical_id}Role"}],
                "PolicyDocument": _document(
                    _allow(["logs:CreateLogStream", "logs:PutLogEvents"], [get_arn(f"{logical_id}LogGroup")]),
                ),
            },
        }
        variables: dict[str, Any] = {
            TABLES_BY_NAME[table].env_var: {"Ref": TABLES_BY_NAME[table].logical_id}
            for table in sorted(FUNCTION_ACCESS[name])
        }
        for machine in sorted(STATE_MACHINE_ACCESS.get(name, {})):
            logical_id_of_machine, env_var = STATE_MACHINES[machine]
            variables[env_var] = {"Ref": logical_id_of_machine}
        resources[logical_id] = {
            "Properties": {"Role": get_arn(f"{logical_id}Role"), "Environment": {"Variables": variables}},
        }
    return resources


def _state_machines(settings: StageSettings) -> dict[str, Any]:
    resources: dict[str, Any] = {}
    for name, (logical_id, _) in STATE_MACHINES.items():
        substitutions = definition_substitutions(name)
        resources[f"{logical_id}LogGroup"] = {
            "Type": "AWS::Logs::LogGroup",
            "Properties": {
                "LogGroupName": {"Fn::Sub": f"/aws/vendedlogs/states/${{AWS::StackName}}-{name}"},
                "RetentionInDays": settings.log_retention_days,
            },
        }
        resources[f"{logical_id}Role"] = {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "AssumeRolePolicyDocument": STATES_TRUST,
                "Policies": [{"PolicyName": "invoke-and-observe", "PolicyDocument": _document(
                    _allow(["lambda:InvokeFunction"], list(substitutions.values()), sid="InvokeSagaFunctions"),
                    _allow(LOG_DELIVERY, "*", sid="ExecutionLogs"),
                    _allow(XRAY_STATES, "*", sid="Tracing"),
                )}],
            },
        }
        resources[logical_id] = {
            "Type": "AWS::StepFunctions::StateMachine",
            "Properties": {
                "StateMachineType": settings.state_machine_type,
                "Definition": asl.load(name),
                "DefinitionSubstitutions": substitutions,
                "RoleArn": get_arn(f"{logical_id}Role"),
                "LoggingConfiguration": {
                    "Level": settings.state_machine_log_level,
                    "IncludeExecutionData": True,
                    "Destinations": [{"CloudWatchLogsLogGroup": {"LogGroupArn": get_arn(f"{logical_id}LogGroup")}}],
                },
                "TracingConfiguration": {"Enabled": True},
            },
        }
    return resources


def _outputs() -> dict[str, Any]:
    outputs: dict[str, Any] = {
        table.logical_id: {"Description": f"{table.env_var}: the {table.name} table",
                           "Value": {"Ref": table.logical_id}}
        for table in TABLES
    }
    for name, (logical_id, env_var) in STATE_MACHINES.items():
        outputs[f"{logical_id}Arn"] = {"Description": f"{env_var}: the {name} saga", "Value": {"Ref": logical_id}}
        outputs[f"{logical_id}Console"] = {
            "Description": f"The {name} state machine's executions in the Step Functions console",
            "Value": {"Fn::Sub": "https://${AWS::Region}.console.aws.amazon.com/states/home?region=${AWS::Region}"
                                 f"#/statemachines/view/${{{logical_id}}}"},
        }
    outputs["OperatorFunction"] = {
        "Description": "Invoke with {\"action\": \"recover\"|\"dead_letters\"|\"invariants\"|\"sweep\"}",
        "Value": {"Ref": "Operator"},
    }
    return outputs


def build(stage: str, function_names: list[str] | None = None) -> dict[str, Any]:
    """The merge template of ``stage``."""
    try:
        settings = STAGES[stage]
    except KeyError:
        raise ValueError(f"no deploy settings for stage {stage!r} (known: {', '.join(STAGES)})") from None
    names = app_function_names() if function_names is None else function_names
    check_access(names)
    return {
        "Resources": {
            **_tables(settings), **_state_machines(settings), **_functions(names, settings),
            **dashboard_and_alarms(stage),
        },
        "Outputs": _outputs(),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage", required=True, choices=sorted(STAGES))
    args = parser.parse_args(argv)
    json.dump(build(args.stage), sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
