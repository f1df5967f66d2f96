"""The customers' Amazon Cognito user pool and its app client, in one place: the deploy
template creates them from these properties (deploy/resources.py) and the embedded stack
creates the same pool in moto through the cognito-idp API (local/embedded.py).

CloudFormation's property names are the API's parameter names for everything used here.
"""

from __future__ import annotations

from typing import Any, TypeVar

from chalicelib import config
from chalicelib.customers import AUTHORIZER_NAME, LOYALTY_ID_CLAIM, POOL_ARN_PLACEHOLDER

USER_POOL = "UserPool"  # logical ids
USER_POOL_CLIENT = "UserPoolClient"
__all__ = ["AUTHORIZER_NAME", "POOL_ARN_PLACEHOLDER", "USER_POOL", "USER_POOL_CLIENT", "client_name", "create_in",
           "environment", "pool_name"]

USER_POOL_PROPERTIES: dict[str, Any] = {
    # Customers are created by the airline (loyalty enrolment, ops/seed.py for the demo),
    # not by self sign-up: which loyalty account a customer owns is the airline's to say.
    "AdminCreateUserConfig": {"AllowAdminCreateUserOnly": True},
    "UsernameConfiguration": {"CaseSensitive": False},
    "Policies": {"PasswordPolicy": {
        "MinimumLength": 12, "RequireUppercase": True, "RequireLowercase": True,
        "RequireNumbers": True, "RequireSymbols": True, "TemporaryPasswordValidityDays": 7,
    }},
    "Schema": [{
        "Name": LOYALTY_ID_CLAIM.removeprefix("custom:"), "AttributeDataType": "String", "Mutable": True,
        "StringAttributeConstraints": {"MinLength": "2", "MaxLength": "32"},
    }],
    "AccountRecoverySetting": {"RecoveryMechanisms": [{"Name": "verified_email", "Priority": 1}]},
}

USER_POOL_CLIENT_PROPERTIES: dict[str, Any] = {
    "GenerateSecret": False,  # the page is a public client: a secret in a browser is no secret
    "ExplicitAuthFlows": ["ALLOW_USER_PASSWORD_AUTH", "ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
    "PreventUserExistenceErrors": "ENABLED",
    "ReadAttributes": ["email", "name", LOYALTY_ID_CLAIM],
    # Never custom:loyalty_id: a customer who could write it could claim anyone's account.
    "WriteAttributes": ["email", "name"],
    "IdTokenValidity": 60,
    "AccessTokenValidity": 60,
    "RefreshTokenValidity": 30,
    "TokenValidityUnits": {"IdToken": "minutes", "AccessToken": "minutes", "RefreshToken": "days"},
    "EnableTokenRevocation": True,
}


def pool_name(prefix: str) -> str:
    """The pool of the stack (or embedded stage) named ``prefix``; the template passes
    ``${AWS::StackName}`` (inside an Fn::Sub)."""
    return f"{prefix}-customers"


def client_name(pool: str) -> str:
    return f"{pool}-web"


def create_in(cognito: Any, name: str) -> tuple[str, str]:
    """Create the pool ``name`` and its client through the API (the embedded stack, the
    deploy rehearsal); returns (user pool id, app client id)."""
    pool_id = cognito.create_user_pool(PoolName=name, **USER_POOL_PROPERTIES)["UserPool"]["Id"]
    client_id = cognito.create_user_pool_client(
        UserPoolId=pool_id, ClientName=client_name(name), **USER_POOL_CLIENT_PROPERTIES,
    )["UserPoolClient"]["ClientId"]
    return pool_id, client_id


Value = TypeVar("Value")


def environment(pool_id: Value, client_id: Value) -> dict[str, Value]:
    """The variables chalicelib reads the pool from: the ids themselves, or in the deploy
    template the ``Ref``s that resolve to them."""
    return {config.USER_POOL_ID_ENV: pool_id, config.USER_POOL_CLIENT_ID_ENV: client_id}
