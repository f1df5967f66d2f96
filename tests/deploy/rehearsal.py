"""The packaged stack created in moto's CloudFormation, and run.

What moto cannot do is bridged, nothing else:

* API Gateway resources are left out (moto's CloudFormation cannot create Chalice's
  RestApi); the API handler is invoked as a Lambda with an API Gateway proxy event.
  What API Gateway does before that is done from the API's own swagger (the RestApi's
  ``Body`` after the SAM transform): on an operation whose ``security`` names the
  Cognito authorizer, the ``Authorization: Bearer`` ID token is checked against the
  pools of its ``providerARNs`` (local/auth.py's checks) and its claims are passed in
  ``requestContext.authorizer.claims``, every value a string; a refused token gets the
  API's ``UNAUTHORIZED`` gateway response, rendered from its template.
* moto's CloudFormation has no Cognito (it skips the resources; a ``Ref`` to them
  resolves to nothing), so the user pool and its client are left out of what it
  creates: they are created first through the cognito-idp API from the same
  properties (deploy.identity.create_in), and every ``Ref``/``GetAtt`` of them in the
  template (the API handler's environment, the authorizer, the outputs) is replaced
  by what it would have resolved to.
* moto's CloudFormation registers the state machines without a usable definition, so
  each is created again through the Step Functions API, under the same name (so the
  same ARN the functions' environment holds), with its ``DefinitionSubstitutions``
  resolved against the stack's resources.
* moto has no state machine versions or aliases: each alias (routing 100% to the
  version this deploy published, the only one a new stack has) and its version are left
  out, and every ``Ref`` of the alias is the state machine's own ARN, which is what
  executions started on it run.
* Lambda invocations run in process (local/hooks.py), each with exactly
  the environment moto's CloudFormation resolved for that function.
* IAM is not enforced by moto: every AWS call a function makes is recorded and then
  checked against the policies the stack attached to that function's role. Calls
  botocore marks unsigned (``authtype: none``: Cognito's InitiateAuth, which POST
  /auth/sign-in makes) are recorded apart: AWS evaluates no IAM policy for them.
"""

from __future__ import annotations

import ast
import copy
import fnmatch
import json
import os
import threading
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3
from moto import mock_aws

from chalicelib import aws, config, customers, saga
from chalicelib.schema import TABLES
from deploy import asl, identity, resources
from deploy import outputs as deploy_outputs
from local import auth, hooks

STACK_NAME = "booking-saga-dev"
REGION = "us-east-1"
ACCOUNT_ID = "123456789012"
MOTO_CONFIG: Any = {"stepfunctions": {"execute_state_machine": True}}
# The variables a deployed function gets from its stack; anything else in this
# process's environment (pytest's local stage) is hidden from it during a call.
STACK_VARIABLES = {table.env_var for table in TABLES} | {
    env_var for _, env_var in resources.STATE_MACHINES.values()
} | set(resources.STATE_MACHINE_ALIASES.values()) | {env_var for env_var, _ in resources.EXPORTED_OUTPUTS.values()} | {
    "STAGE", "FAULT_INJECTION_ENABLED"}
COGNITO = "AWS::Cognito::"
_TRANSACT_ACTIONS = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem",
                     "ConditionCheck": "ConditionCheckItem"}


def refers(value: Any, logical_ids: set[str]) -> bool:
    """Whether ``value`` names one of the resources (Ref, GetAtt, DependsOn, ${X} in a Sub)."""
    text = json.dumps(value)
    return any(f'"{name}"' in text or f"${{{name}" in text for name in logical_ids)


def without_api_gateway(template: dict[str, Any]) -> dict[str, Any]:
    """The template minus API Gateway resources and whatever refers to them."""
    template = copy.deepcopy(template)
    dropped = {key for key, value in template["Resources"].items() if value["Type"].startswith("AWS::ApiGateway::")}
    while True:
        more = {key for key, value in template["Resources"].items() if key not in dropped and refers(value, dropped)}
        if not more:
            break
        dropped |= more
    template["Resources"] = {key: value for key, value in template["Resources"].items() if key not in dropped}
    template["Outputs"] = {key: value for key, value in template.get("Outputs", {}).items()
                           if not refers(value, dropped)}
    return template


def rest_api_definition(template: dict[str, Any]) -> dict[str, Any]:
    """The swagger API Gateway imports: the SAM transform's RestApi ``Body``."""
    (body,) = [resource["Properties"]["Body"] for resource in template["Resources"].values()
               if resource["Type"] == "AWS::ApiGateway::RestApi"]
    return body  # type: ignore[no-any-return]


# --- Cognito --------------------------------------------------------------------------
def create_user_pool(template: dict[str, Any]) -> dict[str, dict[str, str]]:
    """The template's user pool and client, created through the cognito-idp API (from
    deploy/identity.py, as the template's properties are: test_wiring checks), named as
    the template names them: logical id -> {"Ref": ..., "Arn": ...}."""
    found = {key for key, value in template["Resources"].items() if value["Type"].startswith(COGNITO)}
    assert found == {identity.USER_POOL, identity.USER_POOL_CLIENT}, f"a Cognito resource the bridge lacks: {found}"
    name = template["Resources"][identity.USER_POOL]["Properties"]["UserPoolName"]["Fn::Sub"]
    cognito = boto3.client("cognito-idp", region_name=REGION)
    pool_id, client_id = identity.create_in(cognito, name.replace("${AWS::StackName}", STACK_NAME))
    pool_arn = cognito.describe_user_pool(UserPoolId=pool_id)["UserPool"]["Arn"]
    return {identity.USER_POOL: {"Ref": pool_id, "Arn": pool_arn}, identity.USER_POOL_CLIENT: {"Ref": client_id}}


def resolved(value: Any, attributes: dict[str, dict[str, str]]) -> Any:
    """``value`` with every ``Ref``/``Fn::GetAtt`` of these resources replaced by what it resolves to."""
    if isinstance(value, list):
        return [resolved(item, attributes) for item in value]
    if not isinstance(value, dict):
        return value
    if list(value) == ["Ref"] and value["Ref"] in attributes:
        return attributes[value["Ref"]]["Ref"]
    if list(value) == ["Fn::GetAtt"] and value["Fn::GetAtt"][0] in attributes:
        logical_id, attribute = value["Fn::GetAtt"]
        return attributes[logical_id][attribute]
    return {key: resolved(item, attributes) for key, item in value.items()}


def with_bridged_user_pool(template: dict[str, Any]) -> dict[str, Any]:
    """The template with its user pool and client created outside moto's CloudFormation
    and every reference to them resolved; nothing may be left that names them."""
    attributes = create_user_pool(template)
    resources_left = {key: value for key, value in template["Resources"].items() if key not in attributes}
    bridged = resolved({**template, "Resources": resources_left}, attributes)
    assert not refers(bridged["Resources"], set(attributes)) and not refers(bridged.get("Outputs"), set(attributes))
    return bridged  # type: ignore[no-any-return]


# --- State machine versions and aliases ------------------------------------------------
def with_aliases_as_their_machines(template: dict[str, Any]) -> dict[str, Any]:
    """The template without its versions and aliases, each alias's ``Ref`` replaced by
    the ``Ref`` of the state machine its one version was published from."""
    found = {key: value for key, value in template["Resources"].items()
             if value["Type"] == "AWS::StepFunctions::StateMachineAlias"}
    assert len(found) == len(resources.STATE_MACHINES), f"aliases the bridge does not expect: {sorted(found)}"
    replaced: dict[str, Any] = {}
    for alias_id, alias in found.items():
        (route,) = alias["Properties"]["RoutingConfiguration"]
        assert route["Weight"] == 100, alias
        version_id = route["StateMachineVersionArn"]["Ref"]
        machine = template["Resources"][version_id]["Properties"]["StateMachineArn"]
        replaced[alias_id] = machine
        replaced[version_id] = machine
    resources_left = {key: value for key, value in template["Resources"].items() if key not in replaced}

    def bridge(value: Any) -> Any:
        if isinstance(value, list):
            return [bridge(item) for item in value]
        if not isinstance(value, dict):
            return value
        if list(value) == ["Ref"] and value["Ref"] in replaced:
            return replaced[value["Ref"]]
        return {key: bridge(item) for key, item in value.items()}

    bridged = bridge({**template, "Resources": resources_left})
    assert not refers(bridged["Resources"], set(replaced))
    return bridged  # type: ignore[no-any-return]


# --- IAM -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Call:
    function: str  # logical id
    action: str  # IAM action, e.g. dynamodb:GetItem
    resource: str


def _document(raw: Any) -> dict[str, Any]:
    if isinstance(raw, dict):
        return raw
    try:
        return json.loads(raw)  # type: ignore[no-any-return]
    except ValueError:
        return ast.literal_eval(raw)  # type: ignore[no-any-return]  # moto keeps some as Python reprs


def _as_list(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def allows(statements: list[dict[str, Any]], action: str, resource: str) -> bool:
    return any(
        statement["Effect"] == "Allow"
        and any(fnmatch.fnmatchcase(action.lower(), pattern.lower()) for pattern in _as_list(statement["Action"]))
        and any(fnmatch.fnmatchcase(resource, pattern) for pattern in _as_list(statement["Resource"]))
        for statement in statements
    )


def _table_arn(name: str) -> str:
    return f"arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/{name}"


def calls_of(function: str, service: str, operation: str, params: dict[str, Any]) -> list[Call]:
    """The IAM authorisations an API call needs (those this project's code makes)."""
    if service == "dynamodb":
        if operation == "TransactWriteItems":
            return [Call(function, f"dynamodb:{_TRANSACT_ACTIONS[kind]}", _table_arn(body["TableName"]))
                    for item in params["TransactItems"] for kind, body in item.items()]
        if operation in ("BatchWriteItem", "BatchGetItem"):
            return [Call(function, f"dynamodb:{operation}", _table_arn(name)) for name in params["RequestItems"]]
        resource = _table_arn(params["TableName"])
        if params.get("IndexName"):  # a query of an index is authorised on the index's own ARN
            resource += f"/index/{params['IndexName']}"
        return [Call(function, f"dynamodb:{operation}", resource)]
    if service == "states":
        resource = params.get("stateMachineArn") or params.get("executionArn") or "*"
        return [Call(function, f"states:{operation}", resource)]
    return [Call(function, f"{service}:{operation}", "*")]


class CallRecorder:
    """Records, per thread, the AWS calls made while a deployed function runs."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.unsigned: list[Call] = []  # no IAM policy is evaluated for these
        self._current = threading.local()

    @contextmanager
    def running(self, function: str) -> Iterator[None]:
        self._current.function = function
        try:
            yield
        finally:
            self._current.function = None

    def __call__(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        function = getattr(self._current, "function", None)
        if function is not None:
            service = model.service_model.signing_name or model.service_model.endpoint_prefix
            if model.auth_type == "none":
                self.unsigned.append(Call(function, f"{service}:{model.name}", "*"))
            else:
                self.calls.extend(calls_of(function, service, model.name, params))


# --- The stack ------------------------------------------------------------------------
Handler = Callable[[dict[str, Any], Any], Any]


class Refused(Exception):
    """API Gateway answers itself, with the gateway response of this type."""

    def __init__(self, response_type: str, message: str) -> None:
        super().__init__(message)
        self.response_type = response_type
        self.message = message


@dataclass
class DeployedStack:
    template: dict[str, Any]  # as created (plain CloudFormation, no API Gateway)
    physical: dict[str, str]  # logical id -> physical id
    outputs: dict[str, str]
    functions: dict[str, dict[str, Any]]  # logical id -> GetFunctionConfiguration
    recorder: CallRecorder
    api: dict[str, Any]  # the REST API's swagger, Cognito references resolved
    app_module: Any = None
    invoked: set[str] = field(default_factory=set)
    _lock: Any = field(default_factory=threading.RLock)

    def environment(self, logical_id: str) -> dict[str, str]:
        return dict(self.functions[logical_id].get("Environment", {}).get("Variables", {}))

    def role_statements(self, logical_id: str) -> list[dict[str, Any]]:
        """Every statement of the role the deployed function actually runs as."""
        iam = boto3.client("iam", region_name=REGION)
        role = self.functions[logical_id]["Role"].rsplit("/", 1)[-1]
        documents = [_document(iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"])
                     for name in iam.list_role_policies(RoleName=role)["PolicyNames"]]
        for attached in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]:
            policy = iam.get_policy(PolicyArn=attached["PolicyArn"])["Policy"]
            version = iam.get_policy_version(PolicyArn=attached["PolicyArn"], VersionId=policy["DefaultVersionId"])
            documents.append(_document(version["PolicyVersion"]["Document"]))
        return [statement for document in documents for statement in _as_list_of_dicts(document["Statement"])]

    # --- running ----------------------------------------------------------------------
    def handlers(self, app: Any) -> dict[str, Handler]:
        """Deployed function name -> the app's handler, run with that function's environment."""
        by_logical_id: dict[str, Handler] = {asl.logical_id(function.name): function
                                             for function in app.pure_lambda_functions}
        for source in app.event_sources:  # @app.schedule: the module attribute is Chalice's wrapper
            by_logical_id[asl.logical_id(source.name)] = getattr(self.app_module, source.handler_string.split(".")[-1])
        by_logical_id[resources.API_HANDLER] = app
        return {self.functions[logical_id]["FunctionName"]: self._deployed(logical_id, handler)
                for logical_id, handler in by_logical_id.items()}

    def _deployed(self, logical_id: str, handler: Handler) -> Handler:
        environment = self.environment(logical_id)

        def run(event: dict[str, Any], context: Any) -> Any:
            with self._lock:  # the environment is the process's: one function at a time
                saved = {name: os.environ.pop(name) for name in STACK_VARIABLES if name in os.environ}
                os.environ.update(environment)
                self.invoked.add(logical_id)
                try:
                    with self.recorder.running(logical_id):
                        return handler(event, context)
                finally:
                    for name in STACK_VARIABLES:
                        os.environ.pop(name, None)
                    os.environ.update(saved)

        return run

    # --- API Gateway ------------------------------------------------------------------
    def request(self, app: Any, method: str, path: str, body: Any = None,
                token: str | None = None) -> tuple[int, Any]:
        """An HTTP request as API Gateway would pass it to the API handler function,
        with ``Authorization: Bearer <token>`` when a token is given."""
        path, _, query = path.partition("?")
        resource_path, parameters = _route(app, path)
        multi_query: dict[str, list[str]] = {}
        for name, value in urllib.parse.parse_qsl(query, keep_blank_values=True):
            multi_query.setdefault(name, []).append(value)
        headers = {"content-type": "application/json", "host": "rehearsal.execute-api.amazonaws.com"}
        if token is not None:
            headers["authorization"] = f"Bearer {token}"
        try:
            claims = self._authorize(self.api["paths"][resource_path][method.lower()], token)
        except Refused as refused:
            return self.gateway_response(refused.response_type, refused.message)
        event: dict[str, Any] = {
            "resource": resource_path, "path": path, "httpMethod": method,
            "headers": headers, "multiValueHeaders": {key: [value] for key, value in headers.items()},
            # As API Gateway passes a query string: the last value of each name, and all of them.
            "queryStringParameters": {name: values[-1] for name, values in multi_query.items()} or None,
            "multiValueQueryStringParameters": multi_query or None,
            "pathParameters": parameters or None, "stageVariables": None,
            "requestContext": {"resourcePath": resource_path, "httpMethod": method, "path": f"/api{path}",
                               "stage": "api", "requestId": str(uuid.uuid4()), "identity": {"sourceIp": "127.0.0.1"}},
            "body": None if body is None else json.dumps(body), "isBase64Encoded": False,
        }
        if claims is not None:
            event["requestContext"]["authorizer"] = {"claims": claims}
        response = self._lambda_client().invoke(
            FunctionName=self.functions[resources.API_HANDLER]["FunctionName"], Payload=json.dumps(event),
        )
        payload = json.loads(response["Payload"].read())
        assert "FunctionError" not in response, f"{method} {path}: {payload}"
        return int(payload["statusCode"]), json.loads(payload["body"]) if payload.get("body") else None

    def _authorize(self, operation: dict[str, Any], token: str | None) -> dict[str, str] | None:
        """None for a public operation; else what API Gateway's Cognito authorizer passes."""
        names = {name for requirement in operation.get("security", []) for name in requirement}
        if not names:
            return None
        (name,) = names
        authorizer = self.api["securityDefinitions"][name]["x-amazon-apigateway-authorizer"]
        assert authorizer["type"] == "cognito_user_pools", authorizer
        if token is None:
            raise Refused("UNAUTHORIZED", "Unauthorized")
        return self.claims_of(token, authorizer["providerARNs"])

    def claims_of(self, token: str, provider_arns: list[str] | None = None) -> dict[str, str]:
        """The claims of an ID token of one of these pools (by default the authorizer's)
        and the stack's app client, as API Gateway passes them; else Refused."""
        if provider_arns is None:
            provider_arns = self.api["securityDefinitions"][identity.AUTHORIZER_NAME][
                "x-amazon-apigateway-authorizer"]["providerARNs"]
        client_id = self.environment(resources.API_HANDLER)[config.USER_POOL_CLIENT_ID_ENV]
        for arn in provider_arns:
            pool = {config.USER_POOL_ID_ENV: arn.rsplit("/", 1)[-1], config.USER_POOL_CLIENT_ID_ENV: client_id}
            with self._lock, _variables(pool):  # local/auth.py reads the pool from the environment
                try:
                    return auth.as_api_gateway_claims(auth.verified_claims(token))
                except auth.TokenRefused:
                    continue
        raise Refused("UNAUTHORIZED", "Unauthorized")

    def gateway_response(self, response_type: str, message: str) -> tuple[int, Any]:
        """API Gateway's own answer: the API's gateway response of this type, its
        template rendered with API Gateway's message."""
        response = self.api["x-amazon-apigateway-gateway-responses"][response_type]
        assert response["responseParameters"]["gatewayresponse.header.Content-Type"] == "'application/json'"
        body = (response["responseTemplates"]["application/json"]
                .replace("$context.error.messageString", json.dumps(message))
                .replace("$context.error.responseType", response_type))
        return int(response["statusCode"]), json.loads(body)

    def sign_in(self, app: Any, username: str, password: str = customers.DEMO_PASSWORD) -> str:
        """The ID token the stack's own POST /auth/sign-in answers (InitiateAuth on its pool)."""
        status, answer = self.request(app, "POST", "/auth/sign-in", {"username": username, "password": password})
        assert status == 200, answer
        return str(answer["id_token"])

    def _lambda_client(self) -> Any:
        # Making a client iterates os.environ, which a function running in an execution's
        # thread swaps under the lock: iterated unlocked, a key can vanish midway (KeyError).
        with self._lock:
            return boto3.client("lambda", region_name=REGION)

    def invoke(self, logical_id: str, event: dict[str, Any]) -> Any:
        response = self._lambda_client().invoke(
            FunctionName=self.functions[logical_id]["FunctionName"], Payload=json.dumps(event),
        )
        payload = json.loads(response["Payload"].read())
        assert "FunctionError" not in response, f"{logical_id}: {payload}"
        return payload

    def wait_for_executions(self, timeout: float = 30.0) -> None:
        from moto.stepfunctions.parser.utils import TMP_THREADS

        for thread in list(TMP_THREADS):
            thread.join(timeout=timeout)
        TMP_THREADS.clear()


@contextmanager
def _variables(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _as_list_of_dicts(value: Any) -> list[dict[str, Any]]:
    return [value] if isinstance(value, dict) else list(value)


def _route(app: Any, path: str) -> tuple[str, dict[str, str]]:
    parts = path.strip("/").split("/")
    for pattern in app.routes:
        pattern_parts = pattern.strip("/").split("/")
        if len(pattern_parts) != len(parts):
            continue
        parameters = {}
        for expected, actual in zip(pattern_parts, parts, strict=True):
            if expected.startswith("{") and expected.endswith("}"):
                parameters[expected[1:-1]] = actual
            elif expected != actual:
                break
        else:
            return pattern, parameters
    raise AssertionError(f"no route for {path}")


def _create(package_template: dict[str, Any], deployment_zip: bytes, recorder: CallRecorder) -> DeployedStack:
    bridged = with_aliases_as_their_machines(with_bridged_user_pool(package_template))
    template = without_api_gateway(bridged)
    code = next(resource["Properties"]["Code"] for resource in template["Resources"].values()
                if resource["Type"] == "AWS::Lambda::Function")
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=code["S3Bucket"])
    s3.put_object(Bucket=code["S3Bucket"], Key=code["S3Key"], Body=deployment_zip)
    cloudformation = boto3.client("cloudformation", region_name=REGION)
    cloudformation.create_stack(StackName=STACK_NAME, TemplateBody=json.dumps(template),
                                Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"])
    stack = cloudformation.describe_stacks(StackName=STACK_NAME)["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack.get("StackStatusReason")
    physical = {
        summary["LogicalResourceId"]: summary["PhysicalResourceId"]
        for page in cloudformation.get_paginator("list_stack_resources").paginate(StackName=STACK_NAME)
        for summary in page["StackResourceSummaries"]
    }
    lambda_client = boto3.client("lambda", region_name=REGION)
    functions = {
        logical_id: lambda_client.get_function_configuration(FunctionName=physical[logical_id])
        for logical_id, resource in template["Resources"].items() if resource["Type"] == "AWS::Lambda::Function"
    }
    deployed = DeployedStack(template, physical, deploy_outputs.stack_outputs(STACK_NAME, cloudformation),
                             functions, recorder, rest_api_definition(bridged))
    for logical_id, _ in resources.STATE_MACHINES.values():
        _recreate_state_machine(deployed, logical_id)
    return deployed


def resolve(deployed: DeployedStack, value: Any) -> str:
    """A ``Fn::GetAtt [X, Arn]`` of the template, as the stack resolved it."""
    logical_id, attribute = value["Fn::GetAtt"]
    assert attribute == "Arn", value
    resource_type = deployed.template["Resources"][logical_id]["Type"]
    if resource_type == "AWS::Lambda::Function":
        return str(deployed.functions[logical_id]["FunctionArn"])
    if resource_type == "AWS::IAM::Role":
        iam = boto3.client("iam", region_name=REGION)
        return str(iam.get_role(RoleName=deployed.physical[logical_id])["Role"]["Arn"])
    raise AssertionError(f"cannot resolve {value}")


def _recreate_state_machine(deployed: DeployedStack, logical_id: str) -> None:
    properties = deployed.template["Resources"][logical_id]["Properties"]
    values = {name: resolve(deployed, value) for name, value in properties["DefinitionSubstitutions"].items()}
    arn = deployed.physical[logical_id]
    created = saga.client().create_state_machine(
        name=arn.rsplit(":", 1)[-1],
        definition=asl.substitute(json.dumps(properties["Definition"]), values),
        roleArn=resolve(deployed, properties["RoleArn"]),
        type=properties["StateMachineType"],
        tracingConfiguration={"enabled": properties["TracingConfiguration"]["Enabled"]},
    )
    assert created["stateMachineArn"] == arn


@contextmanager
def deployed_stack(cloudformation_template: dict[str, Any], deployment_zip: bytes, app: Any) -> Iterator[DeployedStack]:
    """The stack in moto with the app's handlers behind its functions; the process's
    environment and moto are restored afterwards."""
    saved_environment = dict(os.environ)
    for leak in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        os.environ.pop(leak, None)
    os.environ.update(AWS_DEFAULT_REGION=REGION, AWS_ACCESS_KEY_ID="rehearsal", AWS_SECRET_ACCESS_KEY="rehearsal")
    mock = mock_aws(config=MOTO_CONFIG)
    mock.start()
    boto3.setup_default_session()
    recorder = CallRecorder()
    assert boto3.DEFAULT_SESSION is not None
    boto3.DEFAULT_SESSION.events.register("before-parameter-build", recorder)
    aws.reset_all()
    deployed = None
    try:
        deployed = _create(cloudformation_template, deployment_zip, recorder)
        import app as app_module

        deployed.app_module = app_module
        hooks.install(deployed.handlers(app))
        yield deployed
    finally:
        if deployed is not None:
            deployed.wait_for_executions()
        hooks.uninstall()
        mock.stop()
        aws.reset_all()
        boto3.DEFAULT_SESSION = None
        os.environ.clear()
        os.environ.update(saved_environment)


def seeded_environment(deployed: DeployedStack) -> dict[str, str]:
    """The variables `python -m deploy.outputs` exports, from this stack's outputs."""
    return deploy_outputs.environment(deployed.outputs)


__all__ = ["Call", "DeployedStack", "allows", "deployed_stack"]
