"""What API Gateway's Cognito authorizer does, done where `chalice local` (and Chalice's
test client) would otherwise wave every request through.

`chalice local` ignores a ``CognitoUserPoolAuthorizer``: it copies whatever JWT payload it
is sent into the claims, unverified, and lets a request without a token through. Here a
customer route gets, as on API Gateway:

* 401 before the route runs when the ``Authorization`` header is missing, or its token
  (bare or after ``Bearer``) is not an ID token the pool signed for the app client, or
  has expired (by chalicelib.clock, so tests can move time);
* otherwise the token's claims in ``requestContext.authorizer.claims``, every value a
  string as API Gateway (REST) passes them.

The signature is checked against the pool's published keys (``<issuer>/.well-known/
jwks.json``, answered by moto) with joserfc, a dependency of moto's cognito-idp: nothing
here is in the Lambda zip. ``install()`` runs with the embedded stack.
"""

from __future__ import annotations

import functools
import json
import threading
import time
from typing import Any

from chalice.app import CognitoUserPoolAuthorizer, IAMAuthorizer
from chalice.local import LocalGatewayAuthorizer, NotAuthorizedError
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from chalicelib import clock, config

_original: dict[str, Any] = {}
_keys: dict[str, KeySet] = {}
_keys_lock = threading.Lock()
# API Gateway (REST) passes the token's times as dates: "Wed Nov 25 10:00:00 UTC 2026".
_DATE_CLAIMS = ("exp", "iat")


class TokenRefused(Exception):
    """Why a token does not sign the request in (said in the 401, as the page shows it)."""


def _pool_keys(issuer: str) -> KeySet:
    """The pool's public keys, fetched once per pool, as a verifier of real tokens does."""
    import requests

    with _keys_lock:
        if issuer not in _keys:
            answer = requests.get(f"{issuer}/.well-known/jwks.json", timeout=5)
            answer.raise_for_status()
            _keys[issuer] = KeySet.import_key_set(answer.json())
        return _keys[issuer]


def _bearer(headers: dict[str, str]) -> str:
    value = next((value for key, value in headers.items() if key.lower() == "authorization"), None)
    if not value or not value.strip():
        raise TokenRefused("no Authorization header: sign in (POST /auth/sign-in) and send "
                           "Authorization: Bearer <id_token>")
    scheme, _, rest = value.strip().partition(" ")
    return rest.strip() if scheme.lower() == "bearer" else value.strip()


@functools.lru_cache(maxsize=1024)
def _signed_claims(issuer: str, token: str) -> dict[str, Any]:
    """The payload of a token whose RS256 signature the pool's keys verify (a pure function
    of the two: kept, as API Gateway keeps an authorizer's answer for a token; the time
    and audience checks still run on every request). A refused token is not kept."""
    try:
        return dict(jwt.decode(token, _pool_keys(issuer), algorithms=["RS256"]).claims)
    except (JoseError, ValueError, TypeError) as exc:
        raise TokenRefused(f"the token is not one the user pool signed ({type(exc).__name__})") from None


def verified_claims(token: str) -> dict[str, Any]:
    """The claims of an ID token of this stack's pool and app client, or TokenRefused."""
    issuer = config.user_pool_issuer()
    claims = dict(_signed_claims(issuer, token))  # a copy: the caller may change its own
    if claims.get("iss") != issuer:
        raise TokenRefused("the token was issued by another user pool")
    if claims.get("token_use") != "id":
        # API Gateway takes an access token only for routes that name OAuth scopes; none here do.
        raise TokenRefused("send the id_token, not the access_token")
    if claims.get("aud") != config.user_pool_client_id():
        raise TokenRefused("the token was issued to another app client")
    expiry = claims.get("exp")
    if not isinstance(expiry, int) or expiry <= clock.now_epoch():
        raise TokenRefused("the token has expired: sign in again")
    return claims


def as_api_gateway_claims(claims: dict[str, Any]) -> dict[str, str]:
    shown: dict[str, str] = {}
    for name, value in claims.items():
        if name in _DATE_CLAIMS and isinstance(value, int):
            shown[name] = time.strftime("%a %b %d %H:%M:%S UTC %Y", time.gmtime(value))
        elif isinstance(value, str):
            shown[name] = value
        else:
            shown[name] = json.dumps(value) if isinstance(value, (list, dict)) else str(value)
    return shown


def _refused(reason: str, context: Any) -> NotAuthorizedError:
    body = {"error": "Unauthorized", "message": reason}
    return NotAuthorizedError(
        {"Content-Type": "application/json", "x-amzn-RequestId": context.aws_request_id,
         "x-amzn-ErrorType": "UnauthorizedException"},
        json.dumps(body).encode(),
    )


def _authorize(self: LocalGatewayAuthorizer, raw_path: str, lambda_event: Any, lambda_context: Any) -> Any:
    route = self._route_for_event(lambda_event)
    authorizer = route.authorizer if route else None
    if isinstance(authorizer, CognitoUserPoolAuthorizer):
        try:
            claims = verified_claims(_bearer(lambda_event.get("headers") or {}))
        except TokenRefused as exc:
            raise _refused(str(exc), lambda_context) from None
        lambda_event["requestContext"]["authorizer"] = {"claims": as_api_gateway_claims(claims)}
        return lambda_event, lambda_context
    if isinstance(authorizer, IAMAuthorizer):
        # The local stage's /admin routes: deployed, operators call the operator Lambda
        # with IAM; locally there is no IAM to check (and no warning on every call).
        return lambda_event, lambda_context
    return _original["authorize"](self, raw_path, lambda_event, lambda_context)


def install() -> None:
    if "authorize" not in _original:
        _original["authorize"] = LocalGatewayAuthorizer.authorize
        LocalGatewayAuthorizer.authorize = _authorize  # type: ignore[method-assign]


def uninstall() -> None:
    if "authorize" in _original:
        LocalGatewayAuthorizer.authorize = _original.pop("authorize")  # type: ignore[method-assign]
    with _keys_lock:
        _keys.clear()
    _signed_claims.cache_clear()
