"""Deploy rehearsal: the packaged dev stack (chalice package + merge template, SAM
translated offline) created in moto's CloudFormation, then bookings run through the
stack's own functions, tables and state machines, by customers signed in through the
stack's own POST /auth/sign-in. Proves the names, the environment wiring (Ref/GetAtt),
the definition substitutions, the authorizer's pool and the IAM policies line up.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest

import app as app_module
from chalicelib import api, clock, customers, validation
from chalicelib.models import HOLD_SECONDS, execution_input, leg_event
from chalicelib.schema import TABLES
from chalicelib.vocabulary import FORWARD_STEP_NAMES
from deploy import identity, resources
from local import hooks
from ops.seed import seed_demo
from tests.deploy.conftest import Package
from tests.deploy.rehearsal import DeployedStack, allows, deployed_stack, seeded_environment
from tests.support import settled as saga_over
from tests.support import wait_until

pytestmark = pytest.mark.slow
APP = app_module.app
SCHEDULED_EVENT = {
    "version": "0", "id": "rehearsal", "detail-type": "Scheduled Event", "source": "aws.events",
    "account": "123456789012", "time": "2030-01-01T00:00:00Z", "region": "us-east-1",
    "resources": ["arn:aws:events:us-east-1:123456789012:rule/sweep"], "detail": {},
}


@pytest.fixture(scope="module")
def stack(dev_package: Package) -> Iterator[DeployedStack]:
    with deployed_stack(dev_package.cloudformation, dev_package.deployment_zip.read_bytes(), APP) as deployed:
        hooks.scale_retry_waits(0.01)
        saved = dict(os.environ)
        os.environ.update(seeded_environment(deployed))  # as docs/deploy.md seeds a real stack
        try:
            seed_demo()
        finally:
            os.environ.clear()
            os.environ.update(saved)
        yield deployed


@pytest.fixture(scope="module")
def tokens(stack: DeployedStack) -> dict[str, str]:
    """ID tokens of two demo customers, from the stack's own POST /auth/sign-in."""
    return {username: stack.sign_in(APP, username) for username in customers.DEMO_USERNAMES[:2]}


def book(stack: DeployedStack, token: str, **overrides: Any) -> str:
    body = {
        "flight_number": "SA101",
        "passenger": {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com"},
        "cabin": "ECONOMY",
        "payment": {"card_token": "tok_visa"},
        **overrides,
    }
    status, response = stack.request(APP, "POST", "/bookings", body, token=token)
    assert status == 202, response
    return str(response["booking_id"])


def settled(stack: DeployedStack, token: str, booking_id: str) -> dict[str, Any]:
    def over() -> dict[str, Any] | None:
        status, view = stack.request(APP, "GET", f"/bookings/{booking_id}", token=token)
        assert status == 200, view
        return view if saga_over(view) else None

    return wait_until(over, f"booking {booking_id} to settle")  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def outcomes(stack: DeployedStack, tokens: dict[str, str]) -> dict[str, Any]:
    """Every scenario, run once: the other tests read what happened. FF0001 books."""
    ada, alan = tokens.values()
    confirmed = book(stack, ada, loyalty_id="FF0001", points_to_redeem=5000)
    failed = book(stack, ada, seat="12C", simulate_failure={"AuthorizePayment": "permanent"})
    # AwardMiles fails after the authorisation: VoidPayment releases it; ReleaseSeats fails for good.
    stuck = book(stack, ada, simulate_failure={"AwardMiles": "permanent", "ReleaseSeats": "permanent"})
    unpaid = book(stack, ada, simulate_failure={"CapturePayment": "permanent"})
    result: dict[str, Any] = {
        "confirmed": settled(stack, ada, confirmed),
        "failed": settled(stack, ada, failed),
        "stuck": settled(stack, ada, stuck),
        "unpaid": settled(stack, ada, unpaid),
    }
    result["customers"] = customer_scenarios(stack, ada, alan, confirmed)
    status, cancelling = stack.request(APP, "POST", f"/bookings/{confirmed}/cancel", {}, token=ada)
    assert status == 202, cancelling
    result["cancelled"] = settled(stack, ada, confirmed)
    result["history"] = stack.request(APP, "GET", f"/bookings/{confirmed}/history", token=ada)
    result["statemachines"] = stack.request(APP, "GET", "/statemachines", token=ada)
    result["flights"] = stack.request(APP, "GET", "/flights")
    stack.wait_for_executions()  # RecordCaptureFailure writes its dead letter last
    result["dead_letters"] = stack.invoke("Operator", {"action": "dead_letters"})
    result["invariants"] = stack.invoke("Operator", {"action": "invariants"})
    result["recovered"] = stack.invoke("Operator", {"action": "recover", "booking_id": stuck})
    result["captured"] = stack.invoke("Operator", {"action": "recover", "booking_id": unpaid})
    result["unpaid_after"] = stack.request(APP, "GET", f"/bookings/{unpaid}", token=ada)
    stale = stale_booking(stack, alan)
    clock.advance(HOLD_SECONDS + 60)
    try:
        result["sweep"] = stack.invoke("SweepExpiredHolds", SCHEDULED_EVENT)
    finally:
        clock.reset()
    result["stale"] = stack.request(APP, "GET", f"/bookings/{stale}", token=alan)
    stack.wait_for_executions()
    return result


def customer_scenarios(stack: DeployedStack, ada: str, alan: str, adas_booking: str) -> dict[str, Any]:
    """Through the stack, while FF0001's booking is CONFIRMED: who each token is, FF0002
    asking for it in every way, no token at all, a wrong password."""
    return {
        "me": {name: stack.request(APP, "GET", "/me", token=token) for name, token in (("ada", ada), ("alan", alan))},
        "not_alans": [
            stack.request(APP, "GET", f"/bookings/{adas_booking}", token=alan),
            stack.request(APP, "GET", f"/bookings/{adas_booking}/history", token=alan),
            stack.request(APP, "POST", f"/bookings/{adas_booking}/cancel", {}, token=alan),
        ],
        "still_adas": stack.request(APP, "GET", f"/bookings/{adas_booking}", token=ada),
        "listed": {name: stack.request(APP, "GET", "/bookings?limit=2", token=token)
                   for name, token in (("ada", ada), ("alan", alan))},
        "no_token": stack.request(APP, "GET", f"/bookings/{adas_booking}"),
        "forged_token": stack.request(APP, "GET", f"/bookings/{adas_booking}", token=ada[:-4] + "AAAA"),
        "wrong_password": stack.request(APP, "POST", "/auth/sign-in",
                                        {"username": "FF0001", "password": "Not-the-passw0rd"}),
    }


def stale_booking(stack: DeployedStack, token: str) -> str:
    """A PENDING booking whose ReserveSeats ran (through its deployed function) but whose
    saga is gone: no execution. What the sweeper must undo once the hold expires."""
    body = {"flight_number": "SA102", "passenger": {"first_name": "Grace", "last_name": "Hopper"},
            "seat": "20F", "payment": {"card_token": "tok_visa"}}
    request = validation.parse_booking_request(body, fault_injection_allowed=False)
    customer = customers.from_request_context({"authorizer": {"claims": stack.claims_of(token)}})
    saved = dict(os.environ)
    os.environ.update(seeded_environment(stack))  # the test writes the booking, as POST /bookings would
    try:
        booking, _ = api.open_booking(request, customer=customer, correlation_id=None, idempotency_key=None)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    stack.invoke("ReserveSeats", leg_event(execution_input(booking, request), 0))  # its one leg
    return str(booking["booking_id"])


def test_a_booking_confirms_through_the_stack(outcomes: dict[str, Any]) -> None:
    view = outcomes["confirmed"]
    assert view["status"] == "CONFIRMED", view
    assert [step["name"] for step in view["steps"]] == list(FORWARD_STEP_NAMES)
    assert [step["status"] for step in view["steps"]] == ["SUCCEEDED"] * len(FORWARD_STEP_NAMES), view["steps"]
    assert view["payment"]["status"] == "CAPTURED", view["payment"]


def test_a_capture_that_fails_is_recorded_and_the_operator_captures_it(outcomes: dict[str, Any]) -> None:
    view = outcomes["unpaid"]
    assert (view["status"], view["payment"]["status"]) == ("CONFIRMED", "CAPTURE_FAILED"), view
    assert view["compensations"] == [], view
    recovered = outcomes["captured"]
    assert (recovered["status"], recovered["rerun"], recovered["still_failing"]) == (
        "CONFIRMED", ["CapturePayment"], {}), recovered
    status, after = outcomes["unpaid_after"]
    assert status == 200 and after["payment"]["status"] == "CAPTURED", after


def test_a_permanent_payment_failure_fails_the_booking(outcomes: dict[str, Any]) -> None:
    view = outcomes["failed"]
    assert view["status"] == "FAILED", view
    assert view["failed_step"] == "AuthorizePayment"


def test_a_failed_compensation_is_dead_lettered(outcomes: dict[str, Any]) -> None:
    stuck = outcomes["stuck"]
    assert stuck["status"] == "NEEDS_ATTENTION", stuck
    assert [(entry["name"], entry["status"]) for entry in stuck["compensations"]] == [
        ("VoidPayment", "COMPENSATED"), ("ReleaseSeats", "FAILED")], stuck["compensations"]


def test_customers_sign_in_through_the_stack_and_see_only_their_own_bookings(
    outcomes: dict[str, Any], stack: DeployedStack,
) -> None:
    scenes = outcomes["customers"]
    assert scenes["me"] == {"ada": (200, {"username": "FF0001", "loyalty_id": "FF0001"}),
                            "alan": (200, {"username": "FF0002", "loyalty_id": "FF0002"})}, scenes["me"]
    for status, answer in scenes["not_alans"]:
        assert status == 404 and answer["error"] == "NotFound", answer
    # GET /bookings through the stack's index (its Query allowed by the API role: below).
    (status, adas), (alan_status, alans) = scenes["listed"]["ada"], scenes["listed"]["alan"]
    assert status == 200 and len(adas["bookings"]) == 2 and adas["next_token"], adas
    assert {line["booking_id"] for line in adas["bookings"]} <= {outcomes[kind]["booking_id"]
                                                                 for kind in ("confirmed", "failed", "stuck", "unpaid")}
    assert alan_status == 200 and alans == {"bookings": [], "next_token": None}, alans
    status, view = scenes["still_adas"]
    assert status == 200 and view["status"] == "CONFIRMED", view  # FF0002's cancel changed nothing
    # API Gateway's own refusal, from the template's UNAUTHORIZED gateway response.
    for refusal in (scenes["no_token"], scenes["forged_token"]):
        assert refusal == (401, {"error": "Unauthorized", "message": "Unauthorized"}), refusal
    status, answer = scenes["wrong_password"]
    assert status == 401 and answer["error"] == "SignInFailed", answer
    # Sign-in is Cognito's InitiateAuth, from the API handler: unsigned, so no IAM policy applies.
    assert {(call.function, call.action) for call in stack.recorder.unsigned} == {
        (resources.API_HANDLER, "cognito-idp:InitiateAuth")}


def test_the_api_handler_signs_in_through_the_stacks_pool_and_client(stack: DeployedStack) -> None:
    api_environment = stack.environment(resources.API_HANDLER)
    for output, (variable, _) in resources.EXPORTED_OUTPUTS.items():
        assert api_environment[variable] == stack.outputs[output], variable
    assert stack.outputs["DemoUsers"] == "true"
    authorizer = stack.api["securityDefinitions"][identity.AUTHORIZER_NAME]["x-amazon-apigateway-authorizer"]
    assert authorizer["providerARNs"] == [stack.outputs["UserPoolArn"]]
    assert stack.outputs["UserPoolArn"].endswith(f"/{stack.outputs['UserPoolId']}")


def test_the_cancellation_machine_runs_from_the_stack(outcomes: dict[str, Any]) -> None:
    assert outcomes["cancelled"]["status"] == "CANCELLED", outcomes["cancelled"]
    status, history = outcomes["history"]
    assert status == 200, history
    assert [execution["kind"] for execution in history["executions"]] == ["booking", "cancellation"]
    assert {execution["status"] for execution in history["executions"]} == {"SUCCEEDED"}


def test_the_api_reads_the_deployed_definitions_and_tables(outcomes: dict[str, Any]) -> None:
    status, machines = outcomes["statemachines"]
    assert status == 200, machines
    assert machines["booking"]["definition"]["StartAt"] == "ReserveSeats"
    status, flights = outcomes["flights"]
    assert status == 200 and len(flights["flights"]) == 10, flights


def test_each_function_gets_its_tables_and_chalice_variables_from_the_stack(stack: DeployedStack) -> None:
    names = {table.env_var: stack.outputs[table.logical_id] for table in TABLES}
    for logical_id in stack.functions:
        environment = stack.environment(logical_id)
        assert environment["STAGE"] == "dev" and environment["FAULT_INJECTION_ENABLED"] == "true"
        assert environment["POWERTOOLS_SERVICE_NAME"] == "booking-saga"
        tables = {name: value for name, value in environment.items() if name in names}
        assert tables and tables == {name: names[name] for name in tables}, logical_id
    api = stack.environment(resources.API_HANDLER)
    for logical_id, env_var in resources.STATE_MACHINES.values():
        assert api[env_var] == stack.physical[logical_id] == stack.outputs[f"{logical_id}Arn"]


def test_the_operator_function_and_the_sweeper_run_with_their_roles(outcomes: dict[str, Any]) -> None:
    letters = outcomes["dead_letters"]["dead_letters"]
    assert sorted(letter["compensation"] for letter in letters) == ["CapturePayment", "ReleaseSeats#0"], letters
    assert outcomes["invariants"]["violations"] == [], outcomes["invariants"]
    assert outcomes["recovered"]["status"] == "FAILED", outcomes["recovered"]
    # The sweeper ran every compensation of the stale booking under its own role.
    assert outcomes["sweep"] == {"expired": 1, "released": 1, "bookings_failed": 1}, outcomes["sweep"]
    status, stale = outcomes["stale"]
    assert status == 200 and stale["status"] == "FAILED" and stale["error"]["error"] == "HoldExpired", stale
    assert {entry["name"] for entry in stale["compensations"]} == {
        "CancelBooking", "ReverseMiles", "VoidPayment", "RefundPoints", "ReleaseSeats"}, stale


def test_no_operator_route_is_deployed(dev_package: Package) -> None:
    assert "/admin" not in json.dumps(dev_package.sam), "operators use the operator Lambda, not the public API"


def test_chalice_functions_all_run_as_generated_roles(dev_package: Package) -> None:
    for logical_id, resource in dev_package.sam["Resources"].items():
        if resource["Type"] == "AWS::Serverless::Function":
            assert resource["Properties"]["Role"] == {"Fn::GetAtt": [f"{logical_id}Role", "Arn"]}, logical_id


def test_every_function_ran(outcomes: dict[str, Any], stack: DeployedStack) -> None:
    # CancelBooking runs only when ConfirmBooking fails with an unexpected error (a
    # 10 s task timeout): not worth the wait here; its policy is checked statically.
    assert set(stack.functions) - stack.invoked == {"CancelBooking"}


def test_every_call_a_function_made_is_allowed_by_its_role(outcomes: dict[str, Any], stack: DeployedStack) -> None:
    assert stack.recorder.calls, "no AWS call was recorded"
    statements = {logical_id: stack.role_statements(logical_id) for logical_id in stack.functions}
    denied = sorted({f"{call.function}: {call.action} on {call.resource}" for call in stack.recorder.calls
                     if not allows(statements[call.function], call.action, call.resource)})
    assert not denied, "calls the deployed roles would refuse:\n" + "\n".join(denied)


def test_no_function_may_touch_tables_it_does_not_use(stack: DeployedStack) -> None:
    table_arns = {table.name: f"arn:aws:dynamodb:us-east-1:123456789012:table/{stack.outputs[table.logical_id]}"
                  for table in TABLES}
    for name, access in resources.FUNCTION_ACCESS.items():
        logical_id = resources.function_logical_id(name)
        statements = stack.role_statements(logical_id)
        for table, arn in table_arns.items():
            allowed = {action for action in ("GetItem", "BatchGetItem", "Query", "Scan", "PutItem", "UpdateItem",
                                             "ConditionCheckItem", "DeleteItem", "BatchWriteItem", "DeleteTable")
                       if allows(statements, f"dynamodb:{action}", arn)}
            assert allowed == {action.split(":")[1] for action in access.get(table, ())}, (logical_id, table)
        for indexed in TABLES:
            for index in indexed.indexes:
                arn = f"{table_arns[indexed.name]}/index/{index.name}"
                allowed = {action for action in ("Query", "Scan", "GetItem")
                           if allows(statements, f"dynamodb:{action}", arn)}
                granted = resources.INDEX_ACCESS.get(name, {}).get(indexed.name, ())
                assert allowed == {action.split(":")[1] for action in granted}, (logical_id, index.name)


def test_state_machine_roles_invoke_only_their_functions(stack: DeployedStack) -> None:
    from chalicelib import saga

    iam_client = __import__("boto3").client("iam", region_name="us-east-1")
    every_function = {configuration["FunctionArn"] for configuration in stack.functions.values()}
    for logical_id, _ in resources.STATE_MACHINES.values():
        described = saga.client().describe_state_machine(stateMachineArn=stack.physical[logical_id])
        tasks = {state["Resource"] for state in _states(json.loads(described["definition"]))
                 if state["Type"] == "Task"}
        assert tasks <= every_function
        role = described["roleArn"].rsplit("/", 1)[-1]
        statements = [statement
                      for name in iam_client.list_role_policies(RoleName=role)["PolicyNames"]
                      for statement in _statements(iam_client.get_role_policy(RoleName=role, PolicyName=name))]
        invocable = {arn for arn in every_function if allows(statements, "lambda:InvokeFunction", arn)}
        assert invocable == tasks, logical_id


def _states(definition: dict[str, Any]) -> list[dict[str, Any]]:
    """Every state of a definition, those inside a Map's item processor included."""
    found = []
    for state in definition["States"].values():
        found.append(state)
        if state["Type"] == "Map":
            found += _states(state["ItemProcessor"])
    return found


def _statements(response: dict[str, Any]) -> list[dict[str, Any]]:
    from tests.deploy.rehearsal import _as_list_of_dicts, _document

    return _as_list_of_dicts(_document(response["PolicyDocument"])["Statement"])
