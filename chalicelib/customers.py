"""Who is asking: customers sign in to an Amazon Cognito user pool, and every customer
route reads them from the token's claims.

On AWS, API Gateway's Cognito authorizer checks the ``Authorization: Bearer <id_token>``
header (signature against the pool's keys, expiry, issuer) before any Lambda runs and
hands the route the token's claims; locally, local/auth.py does the same checks where
API Gateway would. Either way the route finds the claims in the same place
(``requestContext.authorizer.claims``) and reads the customer from them here.

A customer is the pool's ``sub`` (stable, never reused). The loyalty account they own is
their ``custom:loyalty_id`` attribute, which only the airline sets: the app client may
read it, never write it (deploy/identity.py), so no customer can claim another's account.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chalicelib import aws, config
from chalicelib.errors import Forbidden, SignInFailed, TooManyRequests, Unauthorized
from chalicelib.logs import logger
from chalicelib.validation import parse_sign_in

#: The demo customers of the local and dev stages: username = their loyalty id.
DEMO_USERNAMES = tuple(f"FF{number:04d}" for number in range(1, 11))
DEMO_PASSWORD = "Demo-Passw0rd"  # the documented demo password (README), never on prod
LOYALTY_ID_CLAIM = "custom:loyalty_id"
#: The route authorizer's name (its key under the API's securityDefinitions), and the pool
#: it names until the deploy template says which: deploy/resources.py puts the stack's
#: own pool there. Locally local/auth.py checks tokens against the embedded pool.
AUTHORIZER_NAME = "customers"
POOL_ARN_PLACEHOLDER = "arn:aws:cognito-idp:us-east-1:000000000000:userpool/us-east-1_replacedbydeploy"
SIGN_IN_FIRST = "sign in first (POST /auth/sign-in), then send Authorization: Bearer <id_token>"
# Wrong password, unknown user, disabled user: one answer, so sign-in says nothing of who exists.
_WRONG_CREDENTIALS = {"NotAuthorizedException", "UserNotFoundException", "UserNotConfirmedException",
                      "PasswordResetRequiredException"}


def _cognito() -> Any:
    import boto3

    return boto3.client("cognito-idp", region_name=config.region())


cognito = aws.Lazy(_cognito)


@dataclass(frozen=True)
class Customer:
    id: str  # the user pool's sub
    username: str
    loyalty_id: str | None

    def owns_account(self, loyalty_id: str) -> bool:
        return self.loyalty_id is not None and loyalty_id == self.loyalty_id

    def public(self) -> dict[str, Any]:
        return {"username": self.username, "loyalty_id": self.loyalty_id}


def from_request_context(context: dict[str, Any] | None) -> Customer:
    """The signed-in customer of a request (its API Gateway ``requestContext``), or 401.
    API Gateway never lets a customer route run without claims; the check stays, so a
    route wired without the authorizer fails closed."""
    claims = ((context or {}).get("authorizer") or {}).get("claims") or {}
    sub, username = claims.get("sub"), claims.get("cognito:username")
    if not sub or not username or claims.get("token_use") not in (None, "id"):
        raise Unauthorized(SIGN_IN_FIRST)
    return Customer(id=str(sub), username=str(username), loyalty_id=claims.get(LOYALTY_ID_CLAIM) or None)


def check_may_use_account(customer: Customer, loyalty_id: str | None) -> None:
    """A booking's loyalty account, when it names one, must be the customer's own."""
    if loyalty_id is not None and not customer.owns_account(loyalty_id):
        raise Forbidden(f"loyalty account {loyalty_id} is not yours: book with your own ({customer.loyalty_id})"
                        if customer.loyalty_id else
                        f"loyalty account {loyalty_id} is not yours, and you have none", field="loyalty_id")


def sign_in(raw_body: Any) -> dict[str, Any]:
    """``POST /auth/sign-in``: Cognito's InitiateAuth (USER_PASSWORD_AUTH) for the app client."""
    from botocore.exceptions import ClientError

    credentials = parse_sign_in(raw_body)
    try:
        answer = cognito().initiate_auth(
            AuthFlow="USER_PASSWORD_AUTH", ClientId=config.user_pool_client_id(),
            AuthParameters={"USERNAME": credentials.username, "PASSWORD": credentials.password},
        )
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in _WRONG_CREDENTIALS:
            logger.info("sign-in refused", extra={"reason": code})
            raise SignInFailed("wrong username or password") from None
        if code in ("TooManyRequestsException", "LimitExceededException"):
            raise TooManyRequests("too many sign-in attempts: wait a moment and try again") from None
        raise
    if "AuthenticationResult" not in answer:  # a challenge, e.g. NEW_PASSWORD_REQUIRED
        raise SignInFailed(f"this account must first complete {answer.get('ChallengeName', 'a challenge')} "
                           "with Cognito")
    result = answer["AuthenticationResult"]
    return {"id_token": result["IdToken"], "access_token": result["AccessToken"],
            "expires_in": result["ExpiresIn"], "token_type": "Bearer"}
