"""The CloudFormation resources `chalice package --merge-template` adds to Chalice's
own template, generated from the project's single sources:

* the tables from chalicelib/schema.py (TABLES);
* the two state machines from statemachine.json / cancellation.json, their
  ``${XArn}`` placeholders mapped to ``Fn::GetAtt [X, Arn]`` (deploy/asl.py);
* one IAM role per Lambda function, allowed only the DynamoDB actions on the tables
  that function uses (FUNCTION_ACCESS below), and one role per state machine allowed
  to invoke only the functions of its definition;
* the customers' Cognito user pool and its app client from deploy/identity.py, and
  the REST API's Cognito authorizer pointed at that pool;
* each function's environment: the physical names of its tables (``Ref``) and, for
  the API handler, the state machines' ARNs and the pool's ids (``Ref``). Chalice's
  own variables (.chalice/config.json) survive: the merge is a deep merge of dicts
  (a list, though, is replaced whole: chalice.package.TemplateDeepMerger);
* the API's stage throttling and gateway responses (API Gateway's own refusals in the
  API's JSON error shape).

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

from chalicelib import config, errors
from chalicelib.schema import TABLES, TABLES_BY_NAME
from chalicelib.vocabulary import CAPTURE_PAYMENT, COMPENSATIONS, TASKS, Bookkeeping, SagaKind, service_module
from deploy import asl, identity
from deploy.observability import ALARM_TOPIC, dashboard_and_alarms

API_HANDLER = "APIHandler"  # Chalice's logical id of the function behind the REST API
REST_API = "RestAPI"  # Chalice's logical id of that API (AWS::Serverless::Api)
DEMO_USERS = "DEMO_USERS"  # the stage variable chalicelib.config.demo_users_enabled reads


@dataclass(frozen=True)
class StageSettings:
    # STANDARD keeps every execution's history (GET /bookings/{id}/history reads it)
    # and de-duplicates execution names. EXPRESS is cheaper at volume, but its
    # executions cannot be described (the history route then has nothing to show).
    state_machine_type: str = "STANDARD"
    state_machine_log_level: str = "ALL"  # ALL | ERROR | FATAL
    log_retention_days: int = 14
    # DeletionPolicy/UpdateReplacePolicy Retain on what customers' data lives in: the
    # tables and the user pool (a deleted pool takes every customer's sign-in with it).
    retain_data: bool = False
    # API Gateway's stage throttle on every route (a token bucket: steady requests per
    # second, burst). It bounds what one runaway client or script costs: every POST
    # /bookings starts a Standard execution (billed per state transition) and five
    # functions. The page polls two routes every 200 ms while it tracks a saga (10/s for
    # its first 15 s), so dev's 50/s lets a few people watch sagas at once. prod's 200/s
    # stays under Step Functions' StartExecution refill for Standard workflows (300/s in
    # us-east-1, us-west-2, eu-west-1; 150/s elsewhere, where prod should ask for more
    # or throttle lower) and far under the account's 10,000/s API Gateway quota, which
    # every API of the account shares. Raise both with the account's quotas, not alone.
    throttling_rate_limit: float = 50.0
    throttling_burst_limit: int = 100


STAGES = {
    "dev": StageSettings(),
    "prod": StageSettings(state_machine_log_level="ERROR", log_retention_days=90, retain_data=True,
                          throttling_rate_limit=200.0, throttling_burst_limit=400),
}

# API Gateway's own refusals, made before the API handler runs, answer in the API's error
# shape (app.error_response) with the name and status of the chalicelib.errors class the
# API itself would use: response type -> (that class, the message as a JSON value).
# $context.error.messageString is API Gateway's message, already a quoted JSON string.
GATEWAY_MESSAGE = "$context.error.messageString"
GATEWAY_RESPONSES: dict[str, tuple[type[errors.RequestError], str]] = {
    # The Cognito authorizer: no Authorization header, or a token that is not a live ID
    # token of the stack's pool ("Unauthorized", "The incoming token has expired").
    "UNAUTHORIZED": (errors.Unauthorized, GATEWAY_MESSAGE),
    "ACCESS_DENIED": (errors.Forbidden, GATEWAY_MESSAGE),
    "THROTTLED": (errors.TooManyRequests, GATEWAY_MESSAGE),  # the stage's throttle above
    # What API Gateway answers (403 "Missing Authentication Token") for a method and path
    # no route has: no IAM-authorized route is deployed, so it can only mean that.
    "MISSING_AUTHENTICATION_TOKEN": (errors.NotFound, json.dumps("no route answers this method and path")),
}
# Any other refusal (413 too large, 502/504 from the integration) keeps its status and
# says which it is: {"error": "REQUEST_TOO_LARGE", "message": "..."}.
DEFAULT_GATEWAY_RESPONSES = ("DEFAULT_4XX", "DEFAULT_5XX")

GET, BATCH_GET, QUERY, SCAN, PUT, UPDATE, CHECK = (
    f"dynamodb:{action}"
    for action in ("GetItem", "BatchGetItem", "Query", "Scan", "PutItem", "UpdateItem", "ConditionCheckItem")
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
COMPENSATIONS_ACCESS = _merged(*(SAGA_TASK_ACCESS[compensation.function] for compensation in COMPENSATIONS))

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
    # Its recover also captures again a confirmed booking's payment whose capture failed.
    "operator": _merged(COMPENSATIONS_ACCESS, SAGA_TASK_ACCESS[CAPTURE_PAYMENT.function], {
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
    # BATCH_GET: POST /bookings reads the Idempotency-Key's record, the flight, the account
    # and the seat it checks in one request (api.look_up).
    API_HANDLER: {
        "flights": (GET, SCAN, BATCH_GET),
        "seats": (QUERY, BATCH_GET),
        "bookings": (GET, PUT, UPDATE),
        "step_log": (QUERY,),
        "idempotency": (GET, PUT, BATCH_GET),
        "payments": (GET, PUT, UPDATE),  # the payment request, with the booking (withdrawn if no saga starts)
        "loyalty": (QUERY, BATCH_GET),
    },
}

# What each function does to a table's global secondary indexes (chalicelib/schema.py). A
# statement on the table's ARN does not cover them: an index is its own resource,
# ``table/<name>/index/<index>``, and each of the table's indexes is named in the policy.
INDEX_ACCESS: dict[str, Access] = {
    API_HANDLER: {"bookings": (QUERY,)},  # GET /bookings: the customer's, newest first (by_customer)
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

# Each deploy publishes a version of each state machine (when its definition changed)
# and moves the alias to it; executions start on the alias, so one in flight finishes on
# the version it started with. name -> env var of the alias's ARN.
ALIAS_NAME = "live"
STATE_MACHINE_ALIASES: dict[str, str] = {
    SagaKind.BOOKING: config.BOOKING_STATE_MACHINE_ALIAS_ENV,
    SagaKind.CANCELLATION: config.CANCELLATION_STATE_MACHINE_ALIAS_ENV,
}
START_EXECUTION = "states:StartExecution"


def version_logical_id(machine_logical_id: str) -> str:
    return f"{machine_logical_id}Version"


def alias_logical_id(machine_logical_id: str) -> str:
    return f"{machine_logical_id}Alias"


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


def index_arn(table: str, index: str) -> dict[str, Any]:
    """The ARN of one index of the stack's ``table`` (its logical name in schema.py)."""
    return {"Fn::Join": ["", [get_arn(TABLES_BY_NAME[table].logical_id), f"/index/{index}"]]}


def definition_substitutions(name: str) -> dict[str, Any]:
    """``{"ReserveSeatsArn": {"Fn::GetAtt": ["ReserveSeats", "Arn"]}, ...}`` for one definition."""
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
        if table.indexes:
            properties["GlobalSecondaryIndexes"] = table.index_definitions()
        if table.ttl_attribute:
            properties["TimeToLiveSpecification"] = {"AttributeName": table.ttl_attribute, "Enabled": True}
        resources[table.logical_id] = {"Type": "AWS::DynamoDB::Table", "Properties": properties,
                                       **_retention(settings)}
    return resources


def _retention(settings: StageSettings) -> dict[str, str]:
    policy = "Retain" if settings.retain_data else "Delete"
    return {"DeletionPolicy": policy, "UpdateReplacePolicy": policy}


def _user_pool(settings: StageSettings) -> dict[str, Any]:
    """The customers' pool and its app client, from the properties the embedded stack
    creates them with (deploy/identity.py)."""
    pool_name = identity.pool_name("${AWS::StackName}")
    return {
        identity.USER_POOL: {
            "Type": "AWS::Cognito::UserPool",
            "Properties": {"UserPoolName": {"Fn::Sub": pool_name}, **identity.USER_POOL_PROPERTIES},
            **_retention(settings),
        },
        identity.USER_POOL_CLIENT: {
            "Type": "AWS::Cognito::UserPoolClient",
            "Properties": {"UserPoolId": {"Ref": identity.USER_POOL},
                           "ClientName": {"Fn::Sub": identity.client_name(pool_name)},
                           **identity.USER_POOL_CLIENT_PROPERTIES},
        },
    }


def _gateway_response(error: str, message: str, status: int | None = None) -> dict[str, Any]:
    """``error`` and ``message`` are JSON values in the template: quoted literals, or
    $context expressions that API Gateway fills in."""
    response: dict[str, Any] = {
        "ResponseParameters": {"Headers": {"Content-Type": "'application/json'"}},  # quoted: a static value
        "ResponseTemplates": {"application/json": f'{{"error": {error}, "message": {message}}}'},
    }
    if status is not None:
        response["StatusCode"] = str(status)
    return response


def gateway_responses() -> dict[str, Any]:
    responses = {kind: _gateway_response(json.dumps(error.__name__), message, error.status)
                 for kind, (error, message) in GATEWAY_RESPONSES.items()}
    for kind in DEFAULT_GATEWAY_RESPONSES:
        responses[kind] = _gateway_response('"$context.error.responseType"', GATEWAY_MESSAGE)
    return responses


def _rest_api(settings: StageSettings) -> dict[str, Any]:
    """Overrides of Chalice's REST API: its Cognito authorizer (app.py's ``signed_in``)
    checks tokens of this stack's pool, the stage is throttled, API Gateway's refusals
    are JSON in the API's shape (SAM writes GatewayResponses into the swagger)."""
    # A list is replaced whole by the merge: this one replaces app.py's placeholder ARN.
    authorizer = {"x-amazon-apigateway-authorizer": {"providerARNs": [get_arn(identity.USER_POOL)]}}
    return {REST_API: {"Properties": {
        "DefinitionBody": {"securityDefinitions": {identity.AUTHORIZER_NAME: authorizer}},
        "MethodSettings": [{
            "ResourcePath": "/*", "HttpMethod": "*",  # every route and method
            "ThrottlingRateLimit": settings.throttling_rate_limit,
            "ThrottlingBurstLimit": settings.throttling_burst_limit,
        }],
        "GatewayResponses": gateway_responses(),
    }}}


def _function_policy(name: str) -> dict[str, Any]:
    statements = [
        _allow(sorted(actions), [get_arn(TABLES_BY_NAME[table].logical_id)], sid=f"{table.title().replace('_', '')}")
        for table, actions in sorted(FUNCTION_ACCESS[name].items())
    ]
    statements += [
        _allow(sorted(actions), [index_arn(table, index.name) for index in TABLES_BY_NAME[table].indexes],
               sid=f"{table.title().replace('_', '')}Indexes")
        for table, actions in sorted(INDEX_ACCESS.get(name, {}).items())
    ]
    for machine, (machine_actions, execution_actions) in sorted(STATE_MACHINE_ACCESS.get(name, {}).items()):
        logical_id = STATE_MACHINES[machine][0]
        on_machine = sorted(set(machine_actions) - {START_EXECUTION})
        if on_machine:
            statements.append(_allow(on_machine, [{"Ref": logical_id}], sid=f"{logical_id}"))
        if START_EXECUTION in machine_actions:  # on the alias only: never on an unpublished definition
            statements.append(_allow([START_EXECUTION], [{"Ref": alias_logical_id(logical_id)}],
                                     sid=f"{logical_id}Start"))
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
        for machine, (machine_actions, _) in sorted(STATE_MACHINE_ACCESS.get(name, {}).items()):
            logical_id_of_machine, env_var = STATE_MACHINES[machine]
            variables[env_var] = {"Ref": logical_id_of_machine}
            if START_EXECUTION in machine_actions:
                variables[STATE_MACHINE_ALIASES[machine]] = {"Ref": alias_logical_id(logical_id_of_machine)}
        if name == API_HANDLER:
            # POST /auth/sign-in (InitiateAuth for a public client) is an unsigned call:
            # Cognito evaluates no IAM policy for it, so the role needs no statement.
            variables.update(pool_variables())
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
        resources[version_logical_id(logical_id)] = {
            "Type": "AWS::StepFunctions::StateMachineVersion",
            # The revision id changes with the definition: a new version is published
            # exactly when a deploy changed the state machine.
            "Properties": {"StateMachineArn": {"Ref": logical_id},
                           "StateMachineRevisionId": {"Fn::GetAtt": [logical_id, "StateMachineRevisionId"]}},
        }
        resources[alias_logical_id(logical_id)] = {
            "Type": "AWS::StepFunctions::StateMachineAlias",
            "Properties": {"Name": ALIAS_NAME, "RoutingConfiguration": [
                {"StateMachineVersionArn": {"Ref": version_logical_id(logical_id)}, "Weight": 100}]},
        }
    return resources


def pool_variables() -> dict[str, Any]:
    return identity.environment({"Ref": identity.USER_POOL}, {"Ref": identity.USER_POOL_CLIENT})


def chalice_variables(stage: str) -> dict[str, str]:
    """The variables .chalice/config.json gives every function of ``stage`` (the app's,
    then the stage's, as Chalice merges them)."""
    chalice = json.loads((asl.PROJECT_DIR / ".chalice" / "config.json").read_text())
    return {**chalice.get("environment_variables", {}), **chalice["stages"][stage].get("environment_variables", {})}


# Outputs `python -m deploy.outputs` exports as the variable chalicelib reads, e.g. so
# `python -m ops.seed --demo` creates the demo customers: output -> (variable, what).
EXPORTED_OUTPUTS = {
    "UserPoolId": (config.USER_POOL_ID_ENV, "the customers' Cognito user pool"),
    "UserPoolClientId": (config.USER_POOL_CLIENT_ID_ENV, "its app client (POST /auth/sign-in signs in through it)"),
    "DemoUsers": (DEMO_USERS, "whether this stage has the demo customers FF0001-FF0010"),
}


def _outputs(stage: str) -> dict[str, Any]:
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
    # DemoUsers is the stage's DEMO_USERS as Chalice gives it to the functions (unset: off).
    values = {**pool_variables(), DEMO_USERS: chalice_variables(stage).get(DEMO_USERS, "false")}
    for output, (variable, what) in EXPORTED_OUTPUTS.items():
        outputs[output] = {"Description": f"{variable}: {what}", "Value": values[variable]}
    outputs["AlarmTopicArn"] = {
        "Description": "The SNS topic every alarm notifies: subscribe an email to it (docs/deploy.md)",
        "Value": {"Ref": ALARM_TOPIC},
    }
    outputs["UserPoolArn"] = {"Description": "The pool the API's Cognito authorizer checks tokens against",
                              "Value": get_arn(identity.USER_POOL)}
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
            **_user_pool(settings), **_rest_api(settings), **dashboard_and_alarms(stage),
        },
        "Outputs": _outputs(stage),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage", required=True, choices=sorted(STAGES))
    args = parser.parse_args(argv)
    json.dump(build(args.stage), sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
