"""Issue 12, part 3: only the customer sees and acts on their bookings.

Through chalice.test.Client on the embedded stack, whose user pool holds the demo
customers FF0001-FF0010 and whose tokens local/auth.py checks where API Gateway's Cognito
authorizer would. Each case was run first against the app as it was before sign-in
existed, where every route was public: the stranger's reads answered 200, the stranger's
cancel cancelled, and a forged token was never looked at.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import boto3
import pytest
from chalice.app import CognitoUserPoolAuthorizer, IAMAuthorizer
from joserfc import jwt
from joserfc.jwk import RSAKey

import app as app_module
from chalicelib import clock, config, customers
from chalicelib.errors import Unauthorized
from deploy import identity
from local import auth
from tests.support import (
    DEMO_PASSWORD,
    SignedInClient,
    balance,
    booking_body,
    changed_tables,
    id_token,
    items,
    join_execution_threads,
    post_json,
    snapshot,
    wait_for_status,
)

PUBLIC_ROUTES = {
    ("/health", "GET"), ("/config", "GET"), ("/openapi.json", "GET"), ("/", "GET"), ("/assets/{name}", "GET"),
    ("/flights", "GET"), ("/flights/{flight_number}", "GET"), ("/flights/{flight_number}/seats", "GET"),
    ("/auth/sign-in", "POST"),
}
PATH_VALUES = {"booking_id": str(uuid.UUID(int=7)), "loyalty_id": "FF0001", "flight_number": "SA101",
               "name": "app.js"}


def customer_routes() -> list[tuple[str, str]]:
    """Every route with the customers' authorizer, from the app itself."""
    return sorted((path, method) for path, methods in app_module.app.routes.items()
                  for method, entry in methods.items() if isinstance(entry.authorizer, CognitoUserPoolAuthorizer))


def concrete(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda match: PATH_VALUES[match.group(1)], path)


def claims_of(token: str) -> dict[str, Any]:
    return auth.verified_claims(token)


def signed_by_another_key(claims: dict[str, Any]) -> str:
    """The same claims, signed RS256 with a key that is not the pool's (same kid)."""
    return jwt.encode({"alg": "RS256", "kid": "dummy"}, claims, RSAKey.generate_key(2048))


def signed_by_the_pool_key(claims: dict[str, Any]) -> str:
    """Claims signed with the key moto signs every pool's tokens with: only the claims
    themselves can refuse such a token."""
    from moto.utilities.utils import load_resource

    key = RSAKey.import_key(load_resource("cognitoidp/resources/jwks-private.json"))
    return jwt.encode({"alg": "RS256", "kid": "dummy"}, claims, key)


# --- Which routes need a customer ----------------------------------------------------------------
def test_every_route_but_the_public_ones_needs_a_signed_in_customer() -> None:
    """GIVEN the app's route table WHEN each route's authorizer is read THEN exactly the
    documented public routes have none, the /admin routes (local stage only) are IAM, and
    every other route has the customers' Cognito authorizer."""
    for path, methods in app_module.app.routes.items():
        for method, entry in methods.items():
            if (path, method) in PUBLIC_ROUTES:
                assert entry.authorizer is None, (method, path)
            elif path.startswith("/admin/"):
                assert isinstance(entry.authorizer, IAMAuthorizer), (method, path)
            else:
                assert isinstance(entry.authorizer, CognitoUserPoolAuthorizer), (method, path)
                assert entry.authorizer.name == customers.AUTHORIZER_NAME
    assert len(customer_routes()) == 8


@pytest.mark.parametrize(("path", "method"), customer_routes())
def test_a_customer_route_without_a_valid_token_is_401_and_writes_nothing(
    aws: Any, anonymous_client: Any, path: str, method: str,
) -> None:
    """GIVEN a real token of FF0001 to tamper with
    WHEN a customer route is called with no token, a garbage one, FF0001's claims signed by
    another key, a token of another app client or another pool, the access token instead of
    the ID token, or FF0001's token after it expired
    THEN 401 JSON every time, before the route runs: no table changed."""
    token = id_token(anonymous_client)
    claims = claims_of(token)
    cognito = boto3.client("cognito-idp", region_name=config.region())
    other_client = cognito.create_user_pool_client(UserPoolId=config.user_pool_id(), ClientName="other",
                                                   ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH"])
    other_client_token = cognito.initiate_auth(
        AuthFlow="USER_PASSWORD_AUTH", ClientId=other_client["UserPoolClient"]["ClientId"],
        AuthParameters={"USERNAME": "FF0001", "PASSWORD": DEMO_PASSWORD})["AuthenticationResult"]["IdToken"]
    access_token = json.loads(post_json(anonymous_client, "/auth/sign-in",
                                        {"username": "FF0001", "password": DEMO_PASSWORD}).body)["access_token"]
    other_pool = cognito.create_user_pool(PoolName="elsewhere")["UserPool"]["Id"]
    other_pool_token = signed_by_the_pool_key({**claims, "iss": claims["iss"].replace(config.user_pool_id(),
                                                                                       other_pool)})
    refused = {
        "no header": None,
        "garbage": "Bearer not-a-token",
        "another key": f"Bearer {signed_by_another_key(claims)}",
        "another app client": f"Bearer {other_client_token}",
        "another pool": f"Bearer {other_pool_token}",
        "access token": f"Bearer {access_token}",
        "no expiry": f"Bearer {signed_by_the_pool_key({k: v for k, v in claims.items() if k != 'exp'})}",
    }
    before = snapshot()
    for reason, header in refused.items():
        headers = {"content-type": "application/json", **({"Authorization": header} if header else {})}
        response = anonymous_client.http.request(method, concrete(path), headers=headers, body=b"{}")
        assert response.status_code == 401, (reason, response.body)
        assert json.loads(response.body)["error"] == "Unauthorized", reason
    clock.advance(3600)  # the ID token lives 60 minutes
    expired = anonymous_client.http.request(method, concrete(path), body=b"{}",
                                            headers={"Authorization": f"Bearer {token}"})
    assert expired.status_code == 401 and b"expired" in expired.body
    assert changed_tables(before, snapshot()) == []


def test_the_token_is_taken_bare_or_after_bearer(aws: Any, anonymous_client: Any) -> None:
    """GIVEN FF0001's ID token WHEN GET /me sends it as "Bearer <token>", "bearer <token>" or
    bare THEN each answers FF0001, read from the claims the authorizer handed the route."""
    token = id_token(anonymous_client)
    for header in (f"Bearer {token}", f"bearer {token}", token):
        response = anonymous_client.http.get("/me", headers={"Authorization": header})
        assert response.status_code == 200, response.body
        assert json.loads(response.body) == {"username": "FF0001", "loyalty_id": "FF0001"}


def test_routes_read_the_customer_from_api_gateway_claims() -> None:
    """GIVEN a request context as API Gateway's Cognito authorizer hands it over (every claim
    a string) or without claims WHEN the route reads its customer THEN the sub, username and
    loyalty id come from the claims, and no claims (or an access token's) is a 401."""
    context = {"authorizer": {"claims": {
        "sub": "5f1c", "cognito:username": "FF0003", "custom:loyalty_id": "FF0003", "token_use": "id",
        "exp": "Wed Nov 25 11:00:00 UTC 2026", "aud": "client"}}}
    assert customers.from_request_context(context) == customers.Customer("5f1c", "FF0003", "FF0003")
    without_account = {"authorizer": {"claims": {"sub": "77", "cognito:username": "guest"}}}
    assert customers.from_request_context(without_account).loyalty_id is None
    refusals: list[dict[str, Any] | None] = [
        None, {}, {"authorizer": {}}, {"authorizer": {"claims": {"sub": "x"}}},
        {"authorizer": {"claims": {"sub": "x", "cognito:username": "y", "token_use": "access"}}}]
    for refused in refusals:
        with pytest.raises(Unauthorized):
            customers.from_request_context(refused)


def test_local_claims_are_strings_and_dates_as_api_gateway_passes_them() -> None:
    shown = auth.as_api_gateway_claims({"sub": "s", "exp": 1795593157, "iat": 1795589557, "auth_time": 1795589557,
                                        "cognito:groups": ["a", "b"]})
    assert shown == {"sub": "s", "exp": "Wed Nov 25 07:52:37 UTC 2026", "iat": "Wed Nov 25 06:52:37 UTC 2026",
                     "auth_time": "1795589557", "cognito:groups": '["a", "b"]'}


# --- Signing in ------------------------------------------------------------------------------------
def test_sign_in_answers_tokens_for_the_demo_customers_and_one_401_for_any_wrong_credential(
    aws: Any, anonymous_client: Any,
) -> None:
    """GIVEN the demo customers WHEN each signs in with the demo password, and with a wrong
    password or an unknown username THEN 200 with an ID token whose claims name them and their
    loyalty account; a wrong password and an unknown user get the same 401 body."""
    for username in customers.DEMO_USERNAMES:
        response = post_json(anonymous_client, "/auth/sign-in", {"username": username, "password": DEMO_PASSWORD})
        assert response.status_code == 200, response.body
        tokens = json.loads(response.body)
        assert set(tokens) == {"id_token", "access_token", "expires_in", "token_type"}
        assert (tokens["expires_in"], tokens["token_type"]) == (3600, "Bearer")
        claims = claims_of(tokens["id_token"])
        assert (claims["cognito:username"], claims[customers.LOYALTY_ID_CLAIM]) == (username, username)
    wrong_password = post_json(anonymous_client, "/auth/sign-in", {"username": "FF0001", "password": "Demo-Passw0rd1"})
    no_such_user = post_json(anonymous_client, "/auth/sign-in", {"username": "FF0011", "password": DEMO_PASSWORD})
    assert wrong_password.status_code == no_such_user.status_code == 401
    assert json.loads(wrong_password.body) == json.loads(no_such_user.body) == {
        "error": "SignInFailed", "message": "wrong username or password"}


def test_demo_customers_are_offered_on_local_and_dev_only(aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """GIVEN the prod stage (DEMO_USERS false) WHEN GET /config THEN no demo sign-in is offered."""
    from chalice.test import Client

    monkeypatch.setenv("DEMO_USERS", "false")
    with Client(app_module.app, stage_name="prod") as prod:
        assert "demo_sign_in" not in json.loads(prod.http.get("/config").body)


def test_the_app_client_may_read_but_never_write_the_loyalty_account_claim() -> None:
    """Which account a customer owns is the airline's to say: a customer who could update
    custom:loyalty_id through the app client could claim anyone's points."""
    client = identity.USER_POOL_CLIENT_PROPERTIES
    assert customers.LOYALTY_ID_CLAIM in client["ReadAttributes"]
    assert customers.LOYALTY_ID_CLAIM not in client["WriteAttributes"]
    assert client["GenerateSecret"] is False
    assert identity.USER_POOL_PROPERTIES["AdminCreateUserConfig"] == {"AllowAdminCreateUserOnly": True}


# --- One customer, another's booking -----------------------------------------------------------------
@pytest.fixture
def stranger(anonymous_client: Any) -> SignedInClient:
    return SignedInClient(anonymous_client, "FF0002")


def test_another_customers_booking_is_404_to_read_and_to_cancel(client: Any, stranger: Any) -> None:
    """GIVEN FF0001's CONFIRMED booking
    WHEN FF0002 reads it, its history, FF0001's account, cancels it, and lists their own bookings
    THEN each is 404 with the very body an unknown id gets (nothing says it exists), the
    listing is empty, the cancel changes nothing, and FF0001 still sees it CONFIRMED and can cancel it."""
    booking_id = json.loads(post_json(client, "/bookings", booking_body(loyalty_id="FF0001")).body)["booking_id"]
    assert wait_for_status(booking_id)["status"] == "CONFIRMED"
    unknown = str(uuid.UUID(int=9))

    def answer(path: str, method: str = "GET") -> tuple[int, dict[str, Any]]:
        response = stranger.http.request(method, path, headers={"content-type": "application/json"}, body=b"")
        return response.status_code, json.loads(response.body)

    def same_as_unknown(template: str, known: str, unknown: str, method: str = "GET") -> None:
        status, body = answer(template.format(known), method)
        assert status == 404, body
        assert (status, json.dumps(body).replace(known, unknown)) == (
            answer(template.format(unknown), method)[0], json.dumps(answer(template.format(unknown), method)[1]))

    join_execution_threads()  # the saga's last writes land before the tables are watched
    before = snapshot()
    for template in ("/bookings/{}", "/bookings/{}/history"):
        same_as_unknown(template, booking_id, unknown)
    same_as_unknown("/bookings/{}/cancel", booking_id, unknown, "POST")
    same_as_unknown("/loyalty/{}", "FF0001", "FF0099")
    status, listing = answer("/bookings")
    assert status == 200 and listing == {"bookings": [], "next_token": None}  # FF0002 lists none of FF0001's
    assert changed_tables(before, snapshot()) == []

    assert client.http.get(f"/bookings/{booking_id}").status_code == 200
    assert client.http.post(f"/bookings/{booking_id}/cancel").status_code == 202
    assert wait_for_status(booking_id)["status"] == "CANCELLED"


def test_booking_with_someone_elses_loyalty_account_is_403_and_writes_nothing(client: Any) -> None:
    """GIVEN FF0001 signed in WHEN a booking names FF0002's loyalty account (to spend its
    points) THEN 403 naming loyalty_id, nothing written, FF0002's points untouched; with
    FF0001's own account the same booking is accepted."""
    before = snapshot()
    response = post_json(client, "/bookings", booking_body(loyalty_id="FF0002", points_to_redeem=40_000))
    assert response.status_code == 403, response.body
    assert json.loads(response.body)["error"] == "Forbidden"
    assert json.loads(response.body)["field"] == "loyalty_id"
    assert changed_tables(before, snapshot()) == []
    assert balance("FF0002") == 50_000
    own = post_json(client, "/bookings", booking_body(loyalty_id="FF0001", points_to_redeem=1_000))
    assert own.status_code == 202, own.body


def test_an_idempotency_key_is_each_customers_own(client: Any, stranger: Any) -> None:
    """GIVEN FF0001's booking made with Idempotency-Key k-7
    WHEN FF0002 sends the same body with the same key
    THEN FF0002 gets a booking of their own (never FF0001's id), and each customer's replay
    of k-7 returns their own booking."""
    body, key = booking_body(), {"Idempotency-Key": "k-7"}
    first = json.loads(post_json(client, "/bookings", body, key).body)["booking_id"]
    theirs = post_json(stranger, "/bookings", body, key)
    assert theirs.status_code == 202 and "Idempotent-Replayed" not in theirs.headers
    second = json.loads(theirs.body)["booking_id"]
    assert second != first
    assert json.loads(post_json(client, "/bookings", body, key).body)["booking_id"] == first
    assert json.loads(post_json(stranger, "/bookings", body, key).body)["booking_id"] == second
    owners = {item["booking_id"]: item["customer_id"] for item in items("bookings")}
    assert owners[first] != owners[second]
    assert len(items("idempotency")) == 2
