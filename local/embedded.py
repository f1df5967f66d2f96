"""Start AWS in memory and stand the whole stack up in it: tables, the saga's Lambda
functions (dispatched in process), and the state machines from the same JSON files
that deploy to AWS. moto's Step Functions engine executes them; we only route its
Lambda calls (see hooks.py).
"""

from __future__ import annotations

import io
import json
import logging
import os
import zipfile
from collections.abc import Callable
from typing import Any

from moto import mock_aws

from chalicelib import aws, config, db, saga
from chalicelib.schema import TABLES
from chalicelib.vocabulary import SagaKind
from deploy import asl, identity
from local import auth, hooks

ACCOUNT_ID = "123456789012"
# Lambda stays on moto's Docker backend on purpose: its _invoke_lambda is the hook we
# route to the in-process handlers (the "simple" backend would bypass it); Docker is
# never started.
MOTO_CONFIG: Any = {"stepfunctions": {"execute_state_machine": True}}
# Region and fake credentials, so nothing is asked of the user.
_DEFAULT_ENV = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "embedded",
    "AWS_SECRET_ACCESS_KEY": "embedded",
}
STATE_MACHINE_ENV = {
    SagaKind.BOOKING: config.BOOKING_STATE_MACHINE_ENV,
    SagaKind.CANCELLATION: config.CANCELLATION_STATE_MACHINE_ENV,
}


def dynamodb_backend() -> Any:
    """moto's DynamoDB of the embedded stack: its tables' items, for what reads or writes
    them in place (the state journal's restore, the tests' snapshots and seed copies)."""
    from moto.dynamodb.models import dynamodb_backends

    return dynamodb_backends[ACCOUNT_ID][config.region()]


def _empty_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "# dispatched in process by local.hooks\n")
    return buffer.getvalue()


class EmbeddedAws:
    """The stack in moto. ``definitions`` may replace a definition's text (tests that
    shorten a TimeoutSeconds); by default the files on disk are used unchanged."""

    def __init__(self, app: Any, *, stage: str = "local", definitions: dict[str, str] | None = None) -> None:
        self.app = app
        self.stage = stage
        self.definitions = definitions or {}
        self.function_arns: dict[str, str] = {}
        self.state_machine_arns: dict[str, str] = {}
        self._mock: Any = None

    # --- lifecycle -------------------------------------------------------------
    def start(self) -> EmbeddedAws:
        for key, value in _DEFAULT_ENV.items():
            os.environ.setdefault(key, value)
        self._mock = mock_aws(config=MOTO_CONFIG)
        self._mock.start()
        # moto's engine logs every caught task failure and Fail state as an ERROR with a
        # repr of its parse tree: expected saga flow, already in the execution history.
        logging.getLogger("moto.stepfunctions.parser").setLevel(logging.CRITICAL)
        aws.reset_all(keep=_clients_built_under_moto)
        hooks.install(self.handlers())
        auth.install()
        self.create_tables()
        self.create_functions()
        self.create_state_machines()
        self.create_user_pool()
        return self

    def stop(self) -> None:
        global _clients_built_under_moto
        hooks.uninstall()
        auth.uninstall()
        if self._mock is not None:
            self._mock.stop()
            self._mock = None
        # The clients this stack's moto answered are kept for the next stack (tests start
        # hundreds; a botocore client takes ~50 ms to build, and moto intercepts every
        # client while a mock is up). Out of a stack nothing may use them: a client built
        # in between (no moto) is forgotten when the next stack starts.
        _clients_built_under_moto = aws.built()
        aws.reset_all(keep=_clients_built_under_moto)

    # --- resources ---------------------------------------------------------------
    def handlers(self) -> dict[str, Callable[[dict[str, Any], Any], Any]]:
        return {self.function_name(function.name): function for function in self.app.pure_lambda_functions}

    def function_name(self, name: str) -> str:
        return f"{self.app.app_name}-{self.stage}-{name}"

    def create_tables(self) -> None:
        client = db.client()
        for table in TABLES:
            name = os.environ.setdefault(table.env_var, f"{self.app.app_name}-{self.stage}-{table.name}")
            indexes = {"GlobalSecondaryIndexes": table.index_definitions()} if table.indexes else {}
            client.create_table(
                TableName=name,
                KeySchema=table.key_schema(),
                AttributeDefinitions=table.attribute_definitions(),
                BillingMode="PAY_PER_REQUEST",
                **indexes,
            )

    def create_functions(self) -> None:
        iam = _client("iam")
        role = iam.create_role(
            RoleName=f"{self.app.app_name}-{self.stage}",
            AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
        )["Role"]["Arn"]
        self.role_arn = role
        lambda_client = _client("lambda")
        code = _empty_zip()
        for function in self.app.pure_lambda_functions:
            created = lambda_client.create_function(
                FunctionName=self.function_name(function.name),
                Runtime="python3.11",
                Role=role,
                Handler=f"app.{function.name}",
                Code={"ZipFile": code},
                Timeout=60,
            )
            self.function_arns[asl.placeholder_for(function.name)] = created["FunctionArn"]

    def create_state_machines(self) -> None:
        for name, env_var in STATE_MACHINE_ENV.items():
            definition = asl.substitute(self.definitions.get(name) or asl.text(name), self.function_arns)
            arn = saga.client().create_state_machine(
                name=f"{self.app.app_name}-{self.stage}-{name}",
                definition=definition,
                roleArn=self.role_arn,
            )["stateMachineArn"]
            self.state_machine_arns[name] = arn
            os.environ[env_var] = arn

    def create_user_pool(self) -> None:
        """The customers' pool and app client, as the template has them (deploy/identity.py)."""
        cognito = _client("cognito-idp")
        pool_id, client_id = identity.create_in(cognito, identity.pool_name(f"{self.app.app_name}-{self.stage}"))
        os.environ.update(identity.environment(pool_id, client_id))


_clients_built_under_moto: tuple[Any, ...] = ()
_stack_clients: dict[str, aws.Lazy] = {}


def _client(service: str) -> Any:
    """A client of the stack's own set-up calls, kept as the app's are (``EmbeddedAws.stop``)."""
    if service not in _stack_clients:
        import boto3

        _stack_clients[service] = aws.Lazy(lambda: boto3.client(service, region_name=config.region()))
    return _stack_clients[service]()


_running: EmbeddedAws | None = None

#: The listen backlog of `chalice local`'s server. socketserver's default is 5: a burst
#: of 20 parallel connections already saw resets, while the threads that would accept
#: them were busy. The kernel caps it at net.core.somaxconn (4096 on Linux since 5.4).
LISTEN_BACKLOG = 1024


def raise_listen_backlog(backlog: int = LISTEN_BACKLOG) -> None:
    """Before `chalice local` binds its socket: the class LocalDevServer instantiates is
    its default argument (chalice.local.ThreadedHTTPServer), so its class attribute
    ``request_queue_size`` is what socketserver passes to listen()."""
    from chalice import local as chalice_local

    chalice_local.ThreadedHTTPServer.request_queue_size = backlog


def answer_without_nagle() -> None:
    """Each answer leaves at once. chalice's handler writes the headers, then the body, in
    two small sends; with Nagle's algorithm on, the body waited for the client's ACK of
    the headers, which Linux delays by up to 40 ms: every request to `chalice local`
    took 43 ms or more, /health included (measured, idle server, keep-alive session).
    socketserver's StreamRequestHandler sets TCP_NODELAY when this class attribute is
    true."""
    from chalice import local as chalice_local

    chalice_local.ChaliceRequestHandler.disable_nagle_algorithm = True


#: Requests `chalice local` works on at once (EMBEDDED_MAX_CONCURRENT_REQUESTS overrides
#: it); the others wait, holding no CPU, for a turn. Every request thread shares the one
#: core with the executions' tasks: 100 clients polling at once made each task wait for
#: the core behind them, up to 6-7 s of a 10 s TimeoutSeconds. Measured with
#: bench.e2e's crowd, alternated: with 4, the slowest task took 2 s and the crowd drained
#: in 23 s instead of 53-59 s (fewer threads contending for the GIL); with 8, 2.5 s and 29 s.
#: One turn (2026-12-03, alternated, two servers at once): 16 clients polling every 10 ms
#: confirmed 8.97 bookings/s against 7.62 with 4 (median of 3 rounds; c=1 alike), as a
#: poll that waits its turn leaves the core to the sagas and its client polls less often;
#: the crowd drained in 12.1-13.5 s against 14.8 s with 4, slowest task 0.8-1.0 s.
DEFAULT_MAX_CONCURRENT_REQUESTS = 1
MAX_CONCURRENT_REQUESTS_ENV = "EMBEDDED_MAX_CONCURRENT_REQUESTS"


def bound_concurrent_requests(limit: int | None = None, gateway: Any = None) -> None:
    """At most ``limit`` requests inside chalice's LocalGateway.handle_request (the whole
    of a request's work: authorizer, route, response) at once. Reading the request and
    writing the answer stay outside, so a slow client holds no turn. Idempotent."""
    import threading

    if gateway is None:
        from chalice.local import LocalGateway as gateway
    if getattr(gateway.handle_request, "bounded", False):
        return
    value = os.environ.get(MAX_CONCURRENT_REQUESTS_ENV, "").strip()
    turns = threading.BoundedSemaphore(max(1, limit or int(value or DEFAULT_MAX_CONCURRENT_REQUESTS)))
    original = gateway.handle_request

    def handle_request(self: Any, *args: Any, **kwargs: Any) -> Any:
        with turns:
            return original(self, *args, **kwargs)

    handle_request.bounded = True  # type: ignore[attr-defined]
    gateway.handle_request = handle_request


def start_for_chalice_local(app: Any) -> EmbeddedAws:
    """Start once per process (`chalice local` imports app.py once, before it creates its
    server: so the backlog raised here is the server's): on the state of the last run when
    LOCAL_STATE_DIR names a directory (`make run`; local/persistence.py), else in memory
    with fresh demo data."""
    global _running
    if _running is None:
        from local import console, persistence

        console.install()
        raise_listen_backlog()
        answer_without_nagle()
        bound_concurrent_requests()
        hooks.scale_retry_waits_as_configured()
        stack = EmbeddedAws(app, stage=config.stage())
        store = persistence.StateStore.from_environment()
        if store is not None:
            _running = persistence.start_with_state(stack, store, fresh=persistence.fresh_requested())
        else:
            from ops.seed import seed_demo

            _running = stack.start()
            seed_demo()
    return _running
