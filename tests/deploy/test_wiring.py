"""Checks that app.py, the two definitions and the deploy generator agree, and that the
Lambda package holds Lambda code only: on the merge template (pure), and for what only
the merge can show (the API Chalice generates, as deploy/resources.py overrides it) on
each stage's packaged template, before and after the SAM transform. No AWS, no moto."""

from __future__ import annotations

import ast
import json
import re
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import app as app_module
from chalicelib import config, customers
from chalicelib.schema import BOOKINGS_BY_CUSTOMER, TABLES, TABLES_BY_NAME
from deploy import asl, identity, resources
from deploy import outputs as deploy_outputs
from tests.deploy.conftest import PROJECT_DIR, REQUIRED, Package

# The saga's steps; the operator's function is invoked by hand, not by a state machine.
NOT_IN_STATE_MACHINES = {"operator"}
FUNCTIONS = {function.name for function in app_module.app.pure_lambda_functions} - NOT_IN_STATE_MACHINES
ALL_FUNCTIONS = sorted(resources.app_function_names())  # and event sources (@app.schedule)
DEPLOYED_STAGES = sorted(resources.STAGES)
# Actions that take no resource ARN: the only ones allowed on Resource "*".
RESOURCELESS = {*resources.XRAY_STATES, *resources.LOG_DELIVERY}
# Chalice zips chalicelib/ whole: what runs only outside Lambda must stay out of it.
NOT_FOR_LAMBDA = ("local", "ops", "deploy", "tests", "bench", "moto")
# `make package STAGE=dev` builds it; `make test` runs validate-deploy, which does, first.
DEV_ZIP = PROJECT_DIR / "build" / "dev" / "deployment.zip"
# The routes anyone may call: everything else in app.py's route table needs a signed-in
# customer (API Gateway's Cognito authorizer).
PUBLIC_ROUTES = {
    ("GET", "/health"), ("GET", "/config"), ("GET", "/openapi.json"), ("GET", "/"), ("GET", "/assets/{name}"),
    ("GET", "/flights"), ("GET", "/flights/{flight_number}"), ("GET", "/flights/{flight_number}/seats"),
    ("POST", "/auth/sign-in"),
}
SIGNED_IN: list[dict[str, list[str]]] = [{identity.AUTHORIZER_NAME: []}]
# Routes of the local stage only (config.operator_routes_enabled, on in this process):
# test_no_operator_route_is_deployed checks none is packaged.
OPERATOR_ROUTES = "/admin/"
# API Gateway's own refusals, as the issue asks: response type -> (status, error).
REFUSALS = {"UNAUTHORIZED": (401, "Unauthorized"), "ACCESS_DENIED": (403, "Forbidden"),
            "THROTTLED": (429, "TooManyRequests")}


def placeholders() -> dict[str, set[str]]:
    return {name: asl.placeholders(asl.text(name)) for name in asl.DEFINITION_FILES}


def test_every_lambda_function_has_a_place_in_a_state_machine() -> None:
    used = set().union(*placeholders().values())
    unused = sorted(name for name in FUNCTIONS if asl.placeholder_for(name) not in used)
    assert not unused, f"@app.lambda_function without a Task in statemachine.json/cancellation.json: {unused}"


def test_every_placeholder_names_a_lambda_function() -> None:
    known = {asl.placeholder_for(name) for name in FUNCTIONS}
    for name, found in placeholders().items():
        assert found <= known, f"{name}: no @app.lambda_function for {sorted(found - known)}"


def test_every_task_resource_is_a_placeholder() -> None:
    for name in asl.DEFINITION_FILES:
        for state_name, state in asl.load(name)["States"].items():
            if state["Type"] == "Task":
                assert asl.placeholders(state["Resource"]), f"{name}.{state_name}: Resource is not ${{XArn}}"


@pytest.mark.parametrize("stage", DEPLOYED_STAGES)
def test_every_placeholder_has_a_substitution(stage: str) -> None:
    template = resources.build(stage, ALL_FUNCTIONS)
    for name, (logical_id, _) in resources.STATE_MACHINES.items():
        properties = template["Resources"][logical_id]["Properties"]
        assert set(properties["DefinitionSubstitutions"]) == placeholders()[name]
        for placeholder, value in properties["DefinitionSubstitutions"].items():
            target = value["Fn::GetAtt"][0]
            assert f"{target}Arn" == placeholder
            assert target in {asl.logical_id(function) for function in FUNCTIONS}
        assert properties["Definition"] == asl.load(name)


def test_function_access_covers_exactly_the_functions() -> None:
    assert set(resources.FUNCTION_ACCESS) == {*ALL_FUNCTIONS, resources.API_HANDLER}
    assert set(resources.STATE_MACHINE_ACCESS) <= set(resources.FUNCTION_ACCESS)
    for access in resources.FUNCTION_ACCESS.values():
        assert set(access) <= set(TABLES_BY_NAME)


def _statements(template: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for resource in template["Resources"].values():
        properties = resource.get("Properties", {})
        documents: list[dict[str, Any]] = []  # a user pool's Policies are its password policy, not IAM's
        if resource.get("Type") == "AWS::IAM::Role":
            documents.extend(policy["PolicyDocument"] for policy in properties.get("Policies", []))
        if resource.get("Type") == "AWS::IAM::Policy":
            documents.append(properties["PolicyDocument"])
        found.extend(statement for document in documents for statement in document["Statement"])
    return found


@pytest.mark.parametrize("stage", DEPLOYED_STAGES)
def test_policies_are_least_privilege(stage: str) -> None:
    statements = _statements(resources.build(stage, ALL_FUNCTIONS))
    assert statements
    for statement in statements:
        actions = statement["Action"]
        assert all(action != "*" and not action.endswith(":*") for action in actions), statement
        if statement["Resource"] == "*":
            assert set(actions) <= RESOURCELESS, statement


@pytest.mark.parametrize("stage", DEPLOYED_STAGES)
def test_functions_get_roles_and_the_names_of_exactly_their_tables(stage: str) -> None:
    template = resources.build(stage, ALL_FUNCTIONS)
    for name, access in resources.FUNCTION_ACCESS.items():
        logical_id = resources.function_logical_id(name)
        properties = template["Resources"][logical_id]["Properties"]
        assert properties["Role"] == {"Fn::GetAtt": [f"{logical_id}Role", "Arn"]}
        variables = properties["Environment"]["Variables"]
        tables = {TABLES_BY_NAME[table].env_var: {"Ref": TABLES_BY_NAME[table].logical_id} for table in access}
        assert {key: value for key, value in variables.items() if key.endswith("_TABLE")} == tables


def test_tables_come_from_the_schema() -> None:
    template = resources.build("prod", ALL_FUNCTIONS)
    for table in TABLES:
        resource = template["Resources"][table.logical_id]
        assert resource["Properties"]["KeySchema"] == table.key_schema()
        assert resource["Properties"]["BillingMode"] == "PAY_PER_REQUEST"
        assert resource["Properties"]["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        assert ("TimeToLiveSpecification" in resource["Properties"]) == bool(table.ttl_attribute)
        assert template["Outputs"][table.logical_id]["Value"] == {"Ref": table.logical_id}


def test_the_bookings_table_has_the_customer_index_of_the_schema() -> None:
    """GIVEN the prod template THEN the bookings table carries the by_customer index exactly as
    chalicelib/schema.py declares it (keys, INCLUDE projection), its key attributes defined."""
    template = resources.build("prod", ALL_FUNCTIONS)
    properties = template["Resources"]["BookingsTable"]["Properties"]
    assert properties["GlobalSecondaryIndexes"] == [{
        "IndexName": "by_customer",
        "KeySchema": [{"AttributeName": "customer_id", "KeyType": "HASH"},
                      {"AttributeName": "created_at", "KeyType": "RANGE"}],
        "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": list(BOOKINGS_BY_CUSTOMER.projected)},
    }]
    assert {item["AttributeName"] for item in properties["AttributeDefinitions"]} == {
        "booking_id", "customer_id", "created_at"}
    for table in TABLES:
        if not table.indexes:
            assert "GlobalSecondaryIndexes" not in template["Resources"][table.logical_id]["Properties"]


def test_only_the_api_handler_may_query_the_customer_index() -> None:
    """GIVEN the dev template THEN the API handler's role allows dynamodb:Query (and nothing
    else) on the bookings table's by_customer index, and no other role names an index."""
    template = resources.build("dev", ALL_FUNCTIONS)
    index_arn = {"Fn::Join": ["", [{"Fn::GetAtt": ["BookingsTable", "Arn"]}, "/index/by_customer"]]}
    for name in resources.FUNCTION_ACCESS:
        role = template["Resources"][f"{resources.function_logical_id(name)}Role"]
        statements = _statements({"Resources": {"role": role}})
        on_indexes = [statement for statement in statements if "/index/" in json.dumps(statement["Resource"])]
        if name == resources.API_HANDLER:
            assert on_indexes == [{"Effect": "Allow", "Action": ["dynamodb:Query"], "Resource": [index_arn],
                                   "Sid": "BookingsIndexes"}]
        else:
            assert on_indexes == [], name


def test_chalice_stages_leave_roles_to_the_merge_template() -> None:
    stages = json.loads((PROJECT_DIR / ".chalice" / "config.json").read_text())["stages"]
    assert set(stages) == {"local", *DEPLOYED_STAGES}
    for stage in DEPLOYED_STAGES:
        assert stages[stage]["autogen_policy"] is False
        assert stages[stage]["manage_iam_role"] is False
        assert stages[stage]["environment_variables"]["STAGE"] == stage


def test_a_stage_can_choose_express_state_machines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(resources.STAGES, "dev", resources.StageSettings(state_machine_type="EXPRESS"))
    template = resources.build("dev", ALL_FUNCTIONS)
    for logical_id, _ in resources.STATE_MACHINES.values():
        assert template["Resources"][logical_id]["Properties"]["StateMachineType"] == "EXPRESS"


def _imported_top_levels(path: Path) -> set[str]:
    """The top-level package of every absolute import in the module, wherever it sits
    (a function-level import ships in the zip all the same)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_chalicelib_imports_nothing_that_stays_out_of_the_lambda_zip() -> None:
    modules = sorted((PROJECT_DIR / "chalicelib").rglob("*.py"))
    assert modules
    offenders = {
        str(module.relative_to(PROJECT_DIR)): sorted(_imported_top_levels(module) & set(NOT_FOR_LAMBDA))
        for module in modules
    }
    offenders = {module: names for module, names in offenders.items() if names}
    assert not offenders, f"chalicelib/ is packaged into the Lambda zip, these are not: {offenders}"


def test_the_lambda_zip_holds_app_and_chalicelib_and_no_local_tooling() -> None:
    if not DEV_ZIP.exists():
        reason = f"{DEV_ZIP.relative_to(PROJECT_DIR)} is missing: run make package STAGE=dev"
        if REQUIRED:
            pytest.fail(reason)
        pytest.skip(reason)
    with zipfile.ZipFile(DEV_ZIP) as archive:
        names = archive.namelist()
    assert "app.py" in names
    assert "chalicelib/__init__.py" in names
    unwanted = sorted(name for name in names
                      if name.split("/", 1)[0] in NOT_FOR_LAMBDA or name.startswith("chalicelib/local/"))
    assert not unwanted, (f"{DEV_ZIP.relative_to(PROJECT_DIR)} carries local tooling (stale? run make package "
                          f"STAGE=dev): {unwanted}")


# --- Customers: the user pool, the authorizer, the API's stage ---------------------------
@pytest.fixture(params=DEPLOYED_STAGES)
def package(request: pytest.FixtureRequest, package_of: Callable[[str], Package]) -> Package:
    return package_of(request.param)


def _route_table() -> set[tuple[str, str]]:
    """(method, path) of every route app.py deploys."""
    return {(method, path) for path, methods in app_module.app.routes.items() for method in methods
            if not path.startswith(OPERATOR_ROUTES)}


def _swagger(package: Package) -> dict[str, Any]:
    return package.sam["Resources"][resources.REST_API]["Properties"]["DefinitionBody"]  # type: ignore[no-any-return]


def test_every_route_but_the_public_ones_needs_a_signed_in_customer(package: Package) -> None:
    routes = _route_table()
    missing = sorted(PUBLIC_ROUTES - routes)
    assert not missing, f"public routes app.py no longer has: {missing}"
    operations = {(method.upper(), path): operation
                  for path, methods in _swagger(package)["paths"].items() for method, operation in methods.items()}
    assert set(operations) == routes
    open_routes = sorted(route for route in routes - PUBLIC_ROUTES if operations[route].get("security") != SIGNED_IN)
    assert not open_routes, f"customer routes API Gateway would let anyone call: {open_routes}"
    guarded = sorted(route for route in PUBLIC_ROUTES if "security" in operations[route])
    assert not guarded, f"public routes that would need a token: {guarded}"


def test_the_authorizer_checks_tokens_of_the_stacks_own_pool(package: Package) -> None:
    definition = _swagger(package)["securityDefinitions"][identity.AUTHORIZER_NAME]
    assert definition["x-amazon-apigateway-authtype"] == "cognito_user_pools"
    authorizer = definition["x-amazon-apigateway-authorizer"]
    assert authorizer == {"type": "cognito_user_pools", "providerARNs": [resources.get_arn(identity.USER_POOL)]}
    assert package.sam["Resources"][identity.USER_POOL]["Type"] == "AWS::Cognito::UserPool"
    assert identity.POOL_ARN_PLACEHOLDER not in json.dumps(package.sam)
    # After the SAM transform, the REST API CloudFormation creates says the same.
    body = package.cloudformation["Resources"][resources.REST_API]["Properties"]["Body"]
    assert body["securityDefinitions"][identity.AUTHORIZER_NAME]["x-amazon-apigateway-authorizer"] == authorizer


def _properties(template: dict[str, Any], logical_id: str, *ids: str) -> dict[str, Any]:
    """A Cognito resource's properties but those the template alone can give (names, ids)."""
    return {key: value for key, value in template["Resources"][logical_id]["Properties"].items() if key not in ids}


def test_the_pool_and_client_are_the_ones_the_embedded_stack_and_the_rehearsal_create(package: Package) -> None:
    template = package.sam
    assert _properties(template, identity.USER_POOL, "UserPoolName") == identity.USER_POOL_PROPERTIES
    assert _properties(template, identity.USER_POOL_CLIENT, "UserPoolId", "ClientName") == \
        identity.USER_POOL_CLIENT_PROPERTIES
    client = template["Resources"][identity.USER_POOL_CLIENT]["Properties"]
    assert client["UserPoolId"] == {"Ref": identity.USER_POOL}


def test_customers_may_read_their_loyalty_id_never_write_it(package: Package) -> None:
    client = package.sam["Resources"][identity.USER_POOL_CLIENT]["Properties"]
    assert customers.LOYALTY_ID_CLAIM in client["ReadAttributes"]
    assert customers.LOYALTY_ID_CLAIM not in client["WriteAttributes"]
    assert client["GenerateSecret"] is False  # a public client: the page and POST /auth/sign-in
    pool = package.sam["Resources"][identity.USER_POOL]["Properties"]
    assert pool["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True  # no self sign-up


def test_only_the_api_handler_gets_the_pool_and_no_role_any_cognito_action(package: Package) -> None:
    wanted = identity.environment({"Ref": identity.USER_POOL}, {"Ref": identity.USER_POOL_CLIENT})
    for logical_id, resource in package.sam["Resources"].items():
        if resource["Type"] == "AWS::Serverless::Function":
            variables = resource["Properties"]["Environment"]["Variables"]
            given = {name: value for name, value in variables.items() if name in wanted}
            assert given == (wanted if logical_id == resources.API_HANDLER else {}), logical_id
    # InitiateAuth for a public client is unsigned: the API's role needs no Cognito action.
    actions = [action for statement in _statements(package.sam) for action in statement["Action"]]
    assert actions and not [action for action in actions if action.startswith("cognito")]


def test_prod_retains_the_pool_with_the_tables() -> None:
    for stage, policy in (("dev", "Delete"), ("prod", "Retain")):
        template = resources.build(stage, ALL_FUNCTIONS)
        for logical_id in (identity.USER_POOL, TABLES[0].logical_id):
            resource = template["Resources"][logical_id]
            retention = (resource["DeletionPolicy"], resource["UpdateReplacePolicy"])
            assert retention == (policy, policy), (stage, logical_id)


def test_every_route_of_the_stage_is_throttled(package: Package) -> None:
    settings = resources.STAGES[package.stage]
    (stage,) = [resource["Properties"] for resource in package.cloudformation["Resources"].values()
                if resource["Type"] == "AWS::ApiGateway::Stage"]
    assert stage["MethodSettings"] == [{
        "ResourcePath": "/*", "HttpMethod": "*",
        "ThrottlingRateLimit": settings.throttling_rate_limit, "ThrottlingBurstLimit": settings.throttling_burst_limit,
    }]
    assert 0 < settings.throttling_rate_limit <= settings.throttling_burst_limit


def _rendered(response: dict[str, Any], message: str) -> Any:
    """The body API Gateway sends: the response's template with its $context filled in."""
    template = response["responseTemplates"]["application/json"]
    return json.loads(template.replace("$context.error.messageString", json.dumps(message))
                      .replace("$context.error.responseType", "SOME_TYPE"))


def test_api_gateways_own_refusals_are_json_in_the_apis_error_shape(package: Package) -> None:
    body = package.cloudformation["Resources"][resources.REST_API]["Properties"]["Body"]
    responses = body["x-amazon-apigateway-gateway-responses"]
    assert set(REFUSALS) <= set(responses)
    for kind, (status, error) in REFUSALS.items():
        assert int(responses[kind]["statusCode"]) == status, kind
        assert _rendered(responses[kind], 'it said "no"') == {"error": error, "message": 'it said "no"'}, kind
    for kind, response in responses.items():
        assert response["responseParameters"]["gatewayresponse.header.Content-Type"] == "'application/json'", kind
        assert set(_rendered(response, "refused")) == {"error", "message"}, kind


@pytest.mark.parametrize("stage", DEPLOYED_STAGES)
def test_the_outputs_give_what_seeding_demo_customers_needs(stage: str, monkeypatch: pytest.MonkeyPatch) -> None:
    outputs = resources.build(stage, ALL_FUNCTIONS)["Outputs"]
    assert outputs["UserPoolId"]["Value"] == {"Ref": identity.USER_POOL}
    assert outputs["UserPoolClientId"]["Value"] == {"Ref": identity.USER_POOL_CLIENT}
    assert outputs["UserPoolArn"]["Value"] == resources.get_arn(identity.USER_POOL)
    assert outputs["DemoUsers"]["Value"] == {"dev": "true", "prod": "false"}[stage]
    exported = deploy_outputs.environment({key: f"<{key}>" for key in outputs})
    assert {name: exported[name] for name in (config.USER_POOL_ID_ENV, config.USER_POOL_CLIENT_ID_ENV,
                                              resources.DEMO_USERS)} == {
        config.USER_POOL_ID_ENV: "<UserPoolId>", config.USER_POOL_CLIENT_ID_ENV: "<UserPoolClientId>",
        resources.DEMO_USERS: "<DemoUsers>"}
    # ...under the name chalicelib reads (ops.seed creates the demo customers when it is true).
    monkeypatch.setenv(resources.DEMO_USERS, outputs["DemoUsers"]["Value"])
    assert config.demo_users_enabled() is (stage == "dev")


def _substituted(value: Any, **variables: str) -> str:
    """A name as CloudFormation renders it in a stack: ``Fn::Sub`` of pseudo parameters."""
    if isinstance(value, str):
        return value
    text = value["Fn::Sub"]
    for name, replacement in variables.items():
        text = text.replace("${AWS::" + name + "}", replacement)
    assert "${" not in text, text
    return str(text)


def _named(template: dict[str, Any], kind: str, name_property: str, stack: str) -> set[str]:
    return {_substituted(resource["Properties"][name_property], StackName=stack, Region="eu-west-1")
            for resource in template["Resources"].values() if resource.get("Type") == kind}


@pytest.mark.parametrize("stage", DEPLOYED_STAGES)
def test_two_stacks_of_one_stage_share_no_alarm_or_dashboard_name(stage: str) -> None:
    """GIVEN the template of one stage WHEN two stacks (booking-saga-dev, booking-saga-dev-2)
    are stood up from it in one account and region THEN no alarm and no dashboard name is
    the same in both (CloudFormation would refuse the second stack), and within one stack
    every alarm has a name of its own."""
    template = resources.build(stage, ALL_FUNCTIONS)
    for kind, name_property in (("AWS::CloudWatch::Alarm", "AlarmName"),
                                ("AWS::CloudWatch::Dashboard", "DashboardName")):
        first = _named(template, kind, name_property, "booking-saga-dev")
        second = _named(template, kind, name_property, "booking-saga-dev-2")
        count = sum(1 for resource in template["Resources"].values() if resource.get("Type") == kind)
        assert len(first) == count >= 1, kind
        assert not first & second, kind


@pytest.mark.parametrize("stage", DEPLOYED_STAGES)
def test_every_alarm_notifies_the_stacks_topic_whose_arn_is_an_output(stage: str) -> None:
    """GIVEN the template WHEN its alarms are read THEN each one's AlarmActions is exactly
    the stack's own SNS topic, and the topic's ARN is an output (to subscribe to)."""
    template = resources.build(stage, ALL_FUNCTIONS)
    topics = [logical_id for logical_id, resource in template["Resources"].items()
              if resource.get("Type") == "AWS::SNS::Topic"]
    assert len(topics) == 1
    alarms = {logical_id: resource["Properties"] for logical_id, resource in template["Resources"].items()
              if resource.get("Type") == "AWS::CloudWatch::Alarm"}
    assert alarms
    for logical_id, alarm in alarms.items():
        assert alarm["AlarmActions"] == [{"Ref": topics[0]}], logical_id
    assert template["Outputs"]["AlarmTopicArn"]["Value"] == {"Ref": topics[0]}


NUMBER_WORDS = {6: "six", 7: "seven", 8: "eight", 9: "nine", 10: "ten"}


def test_the_deploy_guide_names_every_output_and_the_true_number_of_tables(package: Package) -> None:
    """GIVEN docs/deploy.md and the packaged template of a stage WHEN its outputs and the
    tables are counted THEN the guide's outputs table names every output (Chalice's and
    the merge template's), and wherever it counts the tables, it counts them right."""
    guide = (PROJECT_DIR / "docs" / "deploy.md").read_text()
    outputs_section = guide.split("## 4. The stack's outputs", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"`(\w+)`", outputs_section))
    assert set(package.sam["Outputs"]) - listed == set()
    counted = re.findall(r"\b(\w+) (?:DynamoDB )?\n?tables\b", guide.replace("\n", " "))
    numbers = {word for word in counted if word in NUMBER_WORDS.values()}
    assert numbers == {NUMBER_WORDS[len(TABLES)]}


def test_each_deploy_publishes_a_version_and_executions_start_on_the_alias(package: Package) -> None:
    """GIVEN the packaged template WHEN its state machines are read THEN each has a
    version published from its current revision (a new one exactly when the definition
    changed) and an alias routing all executions to it; the function that starts
    executions gets the alias's ARN and may start them on the alias only, never on the
    unversioned machine (an execution in flight keeps the version it started on)."""
    template = package.sam["Resources"]
    for machine_id, _ in resources.STATE_MACHINES.values():
        version = template[resources.version_logical_id(machine_id)]
        assert version["Type"] == "AWS::StepFunctions::StateMachineVersion"
        assert version["Properties"] == {"StateMachineArn": {"Ref": machine_id}, "StateMachineRevisionId": {
            "Fn::GetAtt": [machine_id, "StateMachineRevisionId"]}}
        alias = template[resources.alias_logical_id(machine_id)]
        assert alias["Type"] == "AWS::StepFunctions::StateMachineAlias"
        assert alias["Properties"]["RoutingConfiguration"] == [
            {"StateMachineVersionArn": {"Ref": resources.version_logical_id(machine_id)}, "Weight": 100}]
    starters = {name for name, machines in resources.STATE_MACHINE_ACCESS.items()
                if any(resources.START_EXECUTION in actions for actions, _ in machines.values())}
    assert starters == {resources.API_HANDLER}
    variables = template[resources.API_HANDLER]["Properties"]["Environment"]["Variables"]
    for kind, (machine_id, _) in resources.STATE_MACHINES.items():
        assert variables[resources.STATE_MACHINE_ALIASES[kind]] == {"Ref": resources.alias_logical_id(machine_id)}
    for logical_id, resource in template.items():
        if resource.get("Type") != "AWS::IAM::Role":
            continue
        for policy in resource["Properties"].get("Policies", []):
            for statement in policy["PolicyDocument"]["Statement"]:
                if resources.START_EXECUTION in statement["Action"]:
                    assert statement["Resource"] in [[{"Ref": resources.alias_logical_id(machine_id)}]
                                                     for machine_id, _ in resources.STATE_MACHINES.values()], logical_id


def test_executions_start_on_the_alias_where_the_stack_has_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """GIVEN the alias variables a deployed function gets WHEN a saga starts THEN
    StartExecution names the alias; without them (the local stack) the machine itself."""
    from chalicelib import saga
    from chalicelib.vocabulary import SagaKind

    started: list[str] = []

    class Client:
        def start_execution(self, stateMachineArn: str, name: str, input: str) -> dict[str, str]:
            started.append(stateMachineArn)
            return {"executionArn": f"{stateMachineArn}:{name}"}

    machine = "arn:aws:states:us-east-1:123456789012:stateMachine:booking"
    monkeypatch.setattr(saga, "client", lambda: Client())
    monkeypatch.setenv(config.BOOKING_STATE_MACHINE_ENV, machine)
    monkeypatch.delenv(config.BOOKING_STATE_MACHINE_ALIAS_ENV, raising=False)
    saga.start("b-1", SagaKind.BOOKING, {})
    monkeypatch.setenv(config.BOOKING_STATE_MACHINE_ALIAS_ENV, f"{machine}:live")
    saga.start("b-2", SagaKind.BOOKING, {})
    assert started == [machine, f"{machine}:live"]


def test_what_the_docs_say_of_tracing_is_what_the_stack_does(package: Package) -> None:
    """GIVEN the README's and the guide's claims about X-Ray WHEN the template and the
    zip's requirements are read THEN every function has active tracing and every state
    machine tracing on (what X-Ray needs to trace executions and invocations), and the
    docs claim spans inside steps only as far as the X-Ray SDK ships (it does not)."""
    functions = {key: value for key, value in package.sam["Resources"].items()
                 if value["Type"] == "AWS::Serverless::Function"}
    assert functions and all(value["Properties"].get("Tracing") == "Active" for value in functions.values())
    for machine_id, _ in resources.STATE_MACHINES.values():
        assert package.sam["Resources"][machine_id]["Properties"]["TracingConfiguration"] == {"Enabled": True}
    shipped = (PROJECT_DIR / "requirements.txt").read_text()
    docs = (PROJECT_DIR / "README.md").read_text() + (PROJECT_DIR / "docs" / "deploy.md").read_text()
    if "aws-xray-sdk" not in shipped:
        assert "traced with Powertools Tracer" not in docs
        assert "functions and DynamoDB" not in docs


def test_chalice_deploy_refuses_and_names_the_supported_path(tmp_path: Path) -> None:
    """GIVEN no AWS credentials WHEN `chalice deploy --stage dev` runs THEN it exits non-zero
    before calling AWS, saying why and pointing at docs/deploy.md and `sam deploy`; while
    `chalice package` (make package) is untouched by the guard."""
    import os
    import subprocess
    import sys

    chalice = Path(sys.executable).parent / "chalice"
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    env.update(AWS_DEFAULT_REGION="us-east-1", EMBEDDED_AWS="false")
    completed = subprocess.run([str(chalice), "--project-dir", str(PROJECT_DIR), "deploy", "--stage", "dev"],
                               cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert completed.returncode != 0
    assert "`chalice deploy` is not how this app deploys" in completed.stderr
    assert "docs/deploy.md" in completed.stderr and "sam deploy --config-env dev" in completed.stderr
    from deploy.chalice_cli import command_of

    assert command_of(["chalice", "--project-dir", "x", "package", "--stage", "dev", "out"]) == "package"
    assert command_of(["chalice", "deploy"]) == "deploy"


def test_samconfig_deploys_what_make_package_builds() -> None:
    """GIVEN samconfig.toml WHEN each stage's deploy settings are read THEN they deploy
    build/<stage>/sam.json (what `make package STAGE=<stage>` writes) as the stack the
    guide names, with the capabilities the template needs and a bucket SAM manages."""
    import tomllib

    settings = tomllib.loads((PROJECT_DIR / "samconfig.toml").read_text())
    makefile = (PROJECT_DIR / "Makefile").read_text()
    # `chalice package ... build/$(STAGE)` writes sam.json into that directory.
    assert "--merge-template build/resources-$(STAGE).json build/$(STAGE)" in makefile
    for stage in DEPLOYED_STAGES:
        deploy = settings[stage]["deploy"]["parameters"]
        assert deploy["template_file"] == f"build/{stage}/sam.json"
        assert deploy["stack_name"] == f"booking-saga-{stage}"
        assert set(deploy["capabilities"].split()) == {"CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"}
        assert deploy["resolve_s3"] is True
