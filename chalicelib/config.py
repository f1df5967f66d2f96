"""Settings from environment variables, read on every call.

Read lazily so the embedded backend and tests can set variables before the first
use; reading ``os.environ`` is cheap. Stages set these in .chalice/config.json.
"""

from __future__ import annotations

import os

from chalicelib.schema import TABLES_BY_NAME

TRUE_VALUES = {"1", "true", "yes", "on"}


BOOKING_STATE_MACHINE_ENV = "BOOKING_STATE_MACHINE_ARN"
CANCELLATION_STATE_MACHINE_ENV = "CANCELLATION_STATE_MACHINE_ARN"
# The alias executions start on, where the stack publishes versions (AWS): an execution
# keeps the version it started on while a deploy moves the alias. Unset locally (moto
# has no aliases): executions start on the state machine itself.
BOOKING_STATE_MACHINE_ALIAS_ENV = "BOOKING_STATE_MACHINE_ALIAS_ARN"
CANCELLATION_STATE_MACHINE_ALIAS_ENV = "CANCELLATION_STATE_MACHINE_ALIAS_ARN"


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in TRUE_VALUES


def table_name(table: str) -> str:
    """The physical name of a logical table ("seats", "bookings", ...)."""
    env_var = TABLES_BY_NAME[table].env_var
    try:
        return os.environ[env_var]
    except KeyError:
        raise RuntimeError(f"{env_var} is not set: the stage must name the {table} table") from None


def stage() -> str:
    return os.environ.get("STAGE", "local")


def fault_injection_enabled() -> bool:
    """Whether ``simulate_failure`` is honoured. Off unless the stage turns it on."""
    return _flag("FAULT_INJECTION_ENABLED")


def operator_routes_enabled() -> bool:
    """Whether the /admin routes exist. Only where the embedded backend runs (the state
    is inside the `chalice local` process); deployed, operators invoke the `operator`
    Lambda instead, so the public API's role needs none of their permissions."""
    return _flag("OPERATOR_ROUTES_ENABLED")


def embedded_aws_requested() -> bool:
    """Whether this process should run AWS in memory (moto).

    Switched on by a stage variable, never by AWS_CHALICE_CLI_MODE (every chalice
    command sets that), and never inside a real Lambda.
    """
    return _flag("EMBEDDED_AWS") and "AWS_LAMBDA_FUNCTION_NAME" not in os.environ


def chalice_cli_mode() -> bool:
    """Whether a chalice command (local, package, deploy, ...) is importing the app."""
    return bool(os.environ.get("AWS_CHALICE_CLI_MODE")) and "AWS_LAMBDA_FUNCTION_NAME" not in os.environ


def booking_state_machine_arn() -> str:
    return os.environ[BOOKING_STATE_MACHINE_ENV]


def cancellation_state_machine_arn() -> str:
    return os.environ[CANCELLATION_STATE_MACHINE_ENV]


def state_machine_alias_arn(alias_env: str) -> str | None:
    return os.environ.get(alias_env) or None


def authorization_hold_seconds() -> int:
    """How long a card authorisation holds before the gateway lets it lapse (7 days, as
    card networks commonly hold one); past it a capture is refused (AuthorizationExpired)."""
    return int(os.environ.get("AUTHORIZATION_HOLD_SECONDS", str(7 * 24 * 3600)))


def simulated_hang_seconds() -> float:
    """How long an injected ``timeout`` hangs; longer than the task's TimeoutSeconds."""
    return float(os.environ.get("SIMULATED_HANG_SECONDS", "12"))


USER_POOL_ID_ENV = "USER_POOL_ID"
USER_POOL_CLIENT_ID_ENV = "USER_POOL_CLIENT_ID"


def user_pool_id() -> str:
    """The Cognito user pool customers sign in to (the template's, or the embedded one)."""
    return os.environ[USER_POOL_ID_ENV]


def user_pool_client_id() -> str:
    """The pool's app client that POST /auth/sign-in and the page sign in through."""
    return os.environ[USER_POOL_CLIENT_ID_ENV]


def user_pool_issuer() -> str:
    """The ``iss`` of the pool's tokens; its keys are at ``<issuer>/.well-known/jwks.json``."""
    return f"https://cognito-idp.{region()}.amazonaws.com/{user_pool_id()}"


def demo_users_enabled() -> bool:
    """Whether the demo customers (FF0001-FF0010, one password) exist on this stage, and
    GET /config offers them to the page's sign-in box. local and dev only, never prod."""
    return _flag("DEMO_USERS")


def region() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
