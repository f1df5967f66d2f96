"""The places where moto is bent to behave like AWS for this project, and to cost what
AWS costs.

1. Lambda: moto would run a function in Docker. ``LambdaFunction._invoke_lambda(self,
   event)`` returning ``(payload_json, errored, logs)`` is its single entry point; we
   route it to the handler registered in process. An error becomes the payload
   ``{"errorType": <exception class name>, "errorMessage": ...}``, which moto's Step
   Functions engine turns into the error name Retry and Catch match, as AWS does.
2. DynamoDB: AWS applies each request (a conditional write, a transaction) atomically.
   moto's backend has no lock, so two threads could both pass the same condition; we
   serialise DynamoDB requests, which is what makes "never sold twice" testable here.
   Observers registered with ``observe_dynamodb`` (local/persistence.py's journal) see
   each request and its answer inside that lock.
3. DynamoDB transactions: before each TransactWriteItems moto deep-copies every table
   the transaction touches, to roll back on failure. That is O(table) per transaction
   (the 1,620-seat table, the ever-growing bookings table) where AWS is O(items), and
   it made local bookings slower the longer the server ran. We back up only the items
   the transaction touches and restore those on failure: the same all-or-nothing
   result, at the cost of the items themselves.
4. DynamoDB Query: moto builds a base-table Query's candidates from every item of the
   table, sorted, and keeps those of the asked partition: O(table log table) where AWS
   is O(partition). Every booking made the next status poll slower. We hand the Query
   the asked partition only: the same items in the same order, so the same answers.
5. Step Functions parsing: moto parses the whole definition with ANTLR on every
   StartExecution (~45 ms for statemachine.json). We parse each definition once and
   share the program, which is safe only because no component keeps per-execution
   state on itself (see ``ProgramCache``).
6. Step Functions Lambda client: moto's engine builds a new boto3 Lambda client for
   every task it runs. We build one per (region, endpoint, credentials) and reuse it
   (boto3 clients are thread-safe; creating them from the default session is not).
7. Step Functions admission: every execution is a thread of this one process, and a
   task's TimeoutSeconds is wall-clock time. A hundred executions at once share one
   core (the GIL), each task gets a hundredth of it, and the saga dies in
   States.Timeout where AWS, whose Lambdas each have their own CPU, would have taken a
   fraction of a second. So at most ``max_running_executions`` executions evaluate at
   once; the others are started (RUNNING, as on AWS) but wait, first come first
   served, before entering their first state. The definitions are unchanged.
8. DynamoDB update expressions: moto tokenises and parses an UpdateExpression twice per
   UpdateItem (and per Update of a transaction), and every validator pass over the tree
   rebuilds its node-class map at each node; together about a third of a local
   booking's CPU. We parse each expression text once (the tree is only read: moto's
   validator works on a deep copy) and build each validator's map once per pass. The
   same trees, the same validations, the same errors.
9. moto's request dispatch lists the handler class's methods with inspect.getmembers on
   every request to check the action exists; we list each class's once.
10. DynamoDB attribute values: moto parses every attribute value of a request, and
   serialises every item of an answer (GetItem, Query, BatchGetItem), member by member
   against the service model (~20% of a booking's CPU), though a value that holds only
   strings, booleans, maps and lists is already its own wire form, both ways. Those we
   hand over as they are; anything else (a binary, a value still holding moto's
   objects) goes through moto. Before serialising, moto turns the stored items into
   plain dicts (``dynamo_to_dict``) with an isinstance/hasattr cascade per value; we do
   the same walk by exact type, and hand anything unusual to moto's.
11. DynamoDB update validation by type: each of the ten validator passes over an update
   asks isinstance of every node against moto's node classes, which are ABCs (an
   __instancecheck__ each time); the answer depends on the node's type only, so we keep
   it by type. The same traversal, in the same order, with the same processors.
12. Step Functions JSONPath: moto parses every path (InputPath, ResultPath, each
   ``.$`` parameter) with jsonpath_ng, a PLY parser built anew per call, ~0.7 ms each,
   every time a state runs. We parse each path text once (the parsed expression is only
   read: find and update_or_create change the data, not the expression).
13. Signing: botocore signs every request (SigV4: a canonical request, four HMACs),
   about 5% of a local booking's CPU and of a status poll's, for moto, which never checks
   a signature: it reads the account from the access key in the Authorization header
   and, without one, uses the default account, which is the embedded stack's. While
   moto intercepts requests (mock_aws active), requests go unsigned; otherwise botocore
   signs as ever.
14. DynamoDB update validation, continued: of the ten passes over an update's tree,
   the first three (one SET/ADD/REMOVE clause each, no overlapping paths, no key
   attribute updated) depend on the expression text, its ExpressionAttributeNames and
   the table's keys, not on the values or the item. Once a text has passed them with
   those names on such a table, later updates skip them; a text that fails them fails
   every time, as it is never recorded.
15. Step Functions -> Lambda: moto's engine invokes each task's function through a boto3
   client, so the payload is serialised, routed through moto's HTTP emulation to its
   Lambda backend and parsed back: about a millisecond per task. We call that backend's
   function as moto's LambdaResponse.invoke does and hand the engine the fields it keeps
   of the parsed answer (StatusCode, FunctionError, Payload). Anything else (another
   invocation type, an unknown function) goes the SDK way, errors included.
16. Step Functions validation: CreateStateMachine and UpdateStateMachine parse the
   definition with ANTLR to validate it (~300 ms for statemachine.json), throw the parse
   away, and the first execution parses it again. We validate through the program cache
   of 5: a definition that parses is kept as the program its executions will share; one
   that does not goes through moto's own validation, which raises its InvalidDefinition.
   The parsed programs, update expressions and JSONPaths outlive a stack
   (``uninstall`` keeps them, ``clear_caches`` drops them): each is a function of its
   text alone, so the test suite's hundreds of stacks parse each text once per process.
17. Cognito: every user pool imports moto's one fixed RSA private key from its JSON
   (joserfc checks the key, ~100 ms a pool: a third of a test's stack). We import it
   once and every pool signs with that key object, as each did with its own copy of it.

tests/unit/test_hooks.py fails loudly if moto moves any target.
"""

from __future__ import annotations

import collections
import contextlib
import copy
import enum
import functools
import inspect
import io
import json
import os
import pickle
import sys
import threading
import time
import traceback
import types
import uuid
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import moto.core.responses as core_responses
import moto.dynamodb.models as dynamodb_models
import moto.dynamodb.parsing.validators as dynamodb_validators
import moto.dynamodb.responses as dynamodb_responses
from botocore.signers import RequestSigner
from moto.awslambda.models import LambdaFunction
from moto.cognitoidp import models as cognitoidp_models
from moto.core.models import botocore_stubber
from moto.core.parse import BaseJSONParser
from moto.core.serialize import BaseJSONSerializer
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType, LimitedSizeDict
from moto.dynamodb.models.table import Table
from moto.dynamodb.parsing.ast_nodes import DepthFirstTraverser  # type: ignore[attr-defined]
from moto.dynamodb.parsing.ast_nodes import Expression as _AstExpression  # type: ignore[attr-defined]
from moto.dynamodb.parsing.ast_nodes import Node as _AstNode  # type: ignore[attr-defined]
from moto.dynamodb.parsing.ast_nodes import (  # type: ignore[attr-defined]
    UpdateExpressionFunction as _AstUpdateExpressionFunction,
)
from moto.dynamodb.parsing.expressions import UpdateExpressionParser  # type: ignore[attr-defined]
from moto.dynamodb.parsing.validators import (  # type: ignore[attr-defined]
    ActionCountValidator,
    OverlappingPathsValidator,
    UpdateExpressionValidator,
    UpdateHashRangeKeyValidator,
    Validator,
)
from moto.dynamodb.responses import DynamoHandler
from moto.stepfunctions.parser.asl.component.common.path import result_path as sfn_result_path
from moto.stepfunctions.parser.asl.component.component import Component
from moto.stepfunctions.parser.asl.component.eval_component import EvalComponent
from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
from moto.stepfunctions.parser.asl.component.state.state_pass.result import Result
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
from moto.stepfunctions.parser.asl.utils import json_path as sfn_json_path
from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker
from moto.stepfunctions.parser.models import StepFunctionsParserBackend
from moto.stepfunctions.parser.utils import TMP_THREADS

Handler = Callable[[dict[str, Any], Any], Any]

_handlers: dict[str, Handler] = {}
_originals: dict[str, Any] = {}
_dynamodb_lock = threading.RLock()
_dynamodb_observers: list[Callable[[DynamoHandler, Any], None]] = []

#: How many executions evaluate at once (EMBEDDED_MAX_RUNNING_EXECUTIONS overrides it).
#: One process has one core's worth of Python, so more in flight does not add
#: throughput; it only stretches every task. Measured with bench.e2e's crowd (100
#: buyers polling every 200 ms) on the 2-core machine: at 32 and beyond tasks time out;
#: at 16 none did, but the slowest task took 6-7 s of its 10; at 8, 3-5 s, draining
#: about 10% slower; at 4, 25-50% slower still. 8 leaves room for a few executions that
#: only sleep (a retry's backoff, a simulated hang) without stalling the rest.
DEFAULT_MAX_RUNNING_EXECUTIONS = 8
MAX_RUNNING_EXECUTIONS_ENV = "EMBEDDED_MAX_RUNNING_EXECUTIONS"
#: Definitions kept parsed (most recently used): the two sagas, plus tests' variants.
PROGRAM_CACHE_SIZE = 16


class LocalLambdaContext:
    """The attributes of a Lambda context object that handlers and Powertools read."""

    def __init__(self, function: LambdaFunction) -> None:
        self.function_name = function.function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = function.function_arn
        self.memory_limit_in_mb = int(function.memory_size or 128)
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function.function_name}"
        self.log_stream_name = "local"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


# --- 1. Lambda: in process ----------------------------------------------------------------
def _invoke_in_process(self: LambdaFunction, event: Any = None) -> tuple[str, bool, str]:
    handler = _handlers.get(self.function_name)
    if handler is None:
        return json.dumps({
            "errorType": "ResourceNotFoundException",
            "errorMessage": f"no in-process handler for {self.function_name}",
        }), True, ""
    if isinstance(event, (str, bytes)):
        event = json.loads(event or "{}")
    try:
        result = handler(event or {}, LocalLambdaContext(self))
    except Exception as exc:  # the Lambda runtime reports any exception the same way
        payload = {
            "errorType": type(exc).__name__,
            "errorMessage": str(exc),
            "stackTrace": traceback.format_exception(exc)[-3:],
        }
        return json.dumps(payload), True, ""
    return json.dumps(result), False, ""


# --- 2. DynamoDB: one request at a time -------------------------------------------------
def dynamodb_lock() -> threading.RLock:
    """The lock every DynamoDB request holds (tests read moto's storage under it)."""
    return _dynamodb_lock


def _serialised_call_action(self: DynamoHandler) -> Any:
    with _dynamodb_lock:
        response = _originals["dynamodb"](self)
        # Inside the lock and before the caller hears of it: an observer (the journal of
        # local/persistence.py) sees every request in the order it was applied, and has
        # recorded it before anyone can act on the answer.
        for observe in _dynamodb_observers:
            observe(self, response)
        return response


def observe_dynamodb(observer: Callable[[DynamoHandler, Any], None]) -> None:
    """Call ``observer(handler, (status, headers, body))`` after every DynamoDB request,
    under the lock (until ``uninstall``)."""
    _dynamodb_observers.append(observer)


# --- 3. DynamoDB transactions: back up the touched items, not the tables ------------------
class _CopyWithoutTableBackups:
    """moto.dynamodb.models' ``copy`` module, except that a whole Table is not deep-copied
    (transact_write_items' backup; ours backs up the touched items instead)."""

    def deepcopy(self, value: Any, memo: Any = None) -> Any:
        if isinstance(value, Table):
            return value
        return copy.deepcopy(value, memo)

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)


def _touched_items(backend: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> list[tuple[str, Any, Any]]:
    touched = []
    for entry in transact_items:
        for kind, operation in entry.items():
            table = backend.tables.get(operation.get("TableName"))
            if table is None:
                continue
            if kind == "Put":
                key_names = [name for name in (table.hash_key_attr, table.range_key_attr) if name]
                key = {name: operation["Item"][name] for name in key_names if name in operation["Item"]}
            else:
                key = operation.get("Key", {})
            try:
                current = backend.get_item(table.name, key)
            except Exception:  # a malformed operation: moto's own validation reports it
                continue
            touched.append((table.name, key, copy.deepcopy(current)))
    return touched


def _transact_backing_up_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
    touched = _touched_items(self, transact_items)
    try:
        _originals["transact"](self, transact_items)
    except Exception:
        for table_name, key, before in reversed(touched):
            if before is None:
                if self.get_item(table_name, key) is not None:
                    self.delete_item(table_name, key)
            else:
                self.tables[table_name].put_item(before.to_json()["Attributes"])
        raise


# --- 4. DynamoDB Query: one partition -----------------------------------------------------
# Table.query takes its candidates from self.all_items() (the whole table, sorted) and
# keeps those whose hash key matches. While a base-table Query with a hash key runs in
# this thread, the first all_items() call of that table answers with the partition
# alone. Everything after it (the sort by range key, ExclusiveStartKey, Limit, range
# conditions, filters, projections) is moto's own code, unchanged.
_query_scope = threading.local()
_QUERY_PARAMETERS: inspect.Signature | None = None


def _query_one_partition(self: Table, *args: Any, **kwargs: Any) -> Any:
    global _QUERY_PARAMETERS
    original = _originals["query"]
    if _QUERY_PARAMETERS is None:
        _QUERY_PARAMETERS = inspect.signature(original)
    bound = _QUERY_PARAMETERS.bind(self, *args, **kwargs).arguments
    hash_key = bound.get("hash_key")
    if bound.get("index_name") or hash_key is None:  # an index: moto's scan of every item
        return original(self, *args, **kwargs)
    _query_scope.partition = (self, hash_key)
    try:
        return original(self, *args, **kwargs)
    finally:
        _query_scope.partition = None


def _all_items_or_the_queried_partition(self: Table) -> list[Any]:
    scope = getattr(_query_scope, "partition", None)
    if scope is None or scope[0] is not self:
        return _originals["all_items"](self)  # type: ignore[no-any-return]
    _query_scope.partition = None  # only the Query's candidate list, nothing else
    # .get, not [...]: self.items is a defaultdict, and a lookup must not add a partition.
    partition = self.items.get(scope[1])
    if partition is None:
        return []
    if not self.range_key_attr:
        return [partition]
    return sorted(partition.values(), key=lambda item: item.range_key)


# --- 5. Step Functions: parse each definition once ------------------------------------------
def _components(root: Component) -> Iterator[Any]:
    """Every object of a parsed program: its components and what they hold, once each."""
    seen: set[int] = set()
    pending: list[Any] = [root]
    while pending:
        value = pending.pop()
        if id(value) in seen or isinstance(value, (str, bytes, int, float, bool, enum.Enum, type)) or value is None:
            continue
        seen.add(id(value))
        yield value
        if isinstance(value, dict):
            pending.extend(value.values())
        elif isinstance(value, (list, tuple, set, frozenset)):
            pending.extend(value)
        elif isinstance(value, Component) or (
                type(value).__module__.startswith("moto.stepfunctions.parser.asl.component")
                and hasattr(value, "__dict__")):
            pending.extend(vars(value).values())


class ProgramCache:
    """Parsed programs by definition text, the ``size`` most recently used.

    One program evaluated by many executions at once is safe only if evaluation keeps
    nothing of an execution on the components themselves. Checked for moto 5.2.5 by
    reading every assignment to ``self`` outside __init__ under asl/component (pinned by
    tests/unit/test_hooks.py):

    - per-execution state lives in the execution's Environment: the stack, the heap
      (retry attempt counters and backoff multipliers, under each component's
      ``heap_key``), the frames, the variables, the event history;
    - Map and Parallel build their job pools, worker pools, map-run records and
      counters inside ``_eval_body``, per evaluation;
    - the one lazily set attribute is ``EvalComponent.heap_key``: a new uid on first
      access. Two executions reaching a retrier for the first time together could each
      set it, and the one that loses reads its attempt count under a key it did not
      write: the count restarts and the task runs more often than MaxAttempts. So every
      component's key is assigned here, under the lock, before the program is shared;
    - the one literal evaluation hands out by reference and a later state may change in
      place is a Pass state's ``Result`` object: a program with one is not cached (it is
      parsed per execution, as moto does).
    """

    def __init__(self, size: int = PROGRAM_CACHE_SIZE) -> None:
        self.size = size
        self._programs: collections.OrderedDict[str, EvalComponent] = collections.OrderedDict()
        self._lock = threading.Lock()
        self.parses = 0

    def program(self, definition: str) -> EvalComponent:
        with self._lock:  # a miss parses under the lock: the same definition only once
            program = self._programs.get(definition)
            if program is not None:
                self._programs.move_to_end(definition)
                return program
            program = AmazonStateLanguageParser.parse(definition)[0]
            self.parses += 1
            if not self._prepare_for_sharing(program):
                return program
            self._programs[definition] = program
            while len(self._programs) > self.size:
                self._programs.popitem(last=False)
            return program

    @staticmethod
    def _prepare_for_sharing(program: EvalComponent) -> bool:
        parts = list(_components(program))
        if any(isinstance(part, Result) for part in parts):
            return False
        for part in parts:
            if isinstance(part, EvalComponent):
                part.heap_key  # noqa: B018  (the property assigns the key on first access)
        return True

    def clear(self) -> None:
        with self._lock:
            self._programs.clear()


programs = ProgramCache()


def _cached_entrypoint(self: ExecutionWorker) -> EvalComponent:
    return programs.program(self._evaluation_details.state_machine_details.definition)


def _validated_through_the_cache(definition: str) -> None:
    """moto's _validate_definition (16): a definition that parses is valid, and its program
    is kept for the executions; one that does not is left to moto to refuse."""
    try:
        programs.program(definition)
    except Exception:
        _originals["validate"](definition=definition)  # raises moto's InvalidDefinition
        raise


# One object, so that a patch re-applied (``unpatched``) is the very one installed.
_VALIDATE_THROUGH_THE_CACHE = staticmethod(_validated_through_the_cache)


# --- 6. Step Functions: one Lambda client -----------------------------------------------
_clients: dict[tuple[Any, ...], Any] = {}
_clients_lock = threading.Lock()


def _shared_boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
    """moto's boto_client_for, built once per everything it depends on: the region, the
    service, the endpoint (in-process stubber or moto server's port) and the
    credentials. moto signs with fixed keys and ignores ``state_credentials`` (pinned by
    the guard test); its role is in the key anyway, so an assumed role would get its own."""
    from moto.core.models import botocore_stubber
    from moto.settings import moto_server_port

    intercepted = bool(botocore_stubber.enabled)
    key = (region, service, intercepted, None if intercepted else moto_server_port(),
           getattr(state_credentials, "role_arn", None))
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = _originals["boto_client_for"](
                region=region, service=service, state_credentials=state_credentials)
        return client


# --- 15. Step Functions -> Lambda: moto's backend, not an SDK round trip ----------------------
#: What LambdaResponse.invoke answers a payload bigger than Lambda's limit with.
_PAYLOAD_TOO_LARGE = {"errorMessage": "Response payload size exceeded maximum allowed payload size (6291556 bytes).",
                      "errorType": "Function.ResponseSizeTooLarge"}


def _function_of(arn: Any) -> LambdaFunction | None:
    """The function a task's Resource names, if it is a plain function ARN moto knows."""
    from moto.awslambda.models import lambda_backends

    parts = arn.split(":") if isinstance(arn, str) else []
    if len(parts) != 7 or parts[:3] != ["arn", "aws", "lambda"] or parts[5] != "function":
        return None
    region, account = parts[3], parts[4]
    try:
        return lambda_backends[account][region].get_function(arn, None)  # type: ignore[no-any-return]
    except Exception:  # unknown to moto: the SDK way gives the error AWS gives
        return None


def _invoke_through_the_backend(parameters: dict[str, Any], region: str, state_credentials: Any) -> dict[str, Any]:
    """moto's _invoke_lambda_function, answered as its Lambda client would be: the same
    function's invoke, as LambdaResponse.invoke calls it, and the fields the engine keeps
    of the parsed answer (StatusCode, FunctionError, Payload). Any invoke but a plain
    RequestResponse one of a function moto knows goes the SDK way."""
    function = _function_of(parameters.get("FunctionName")) if set(parameters) <= {"FunctionName", "Payload"} else None
    if function is None:
        return _originals["lambda_direct"](parameters, region, state_credentials)  # type: ignore[no-any-return]
    response_headers: dict[str, Any] = {}
    body = parameters.get("Payload") or b""
    payload = function.invoke(body.decode("utf-8") if isinstance(body, bytes) else body, {}, response_headers)
    if sys.getsizeof(payload) > 6000000:
        response_headers["x-amz-function-error"] = "Unhandled"
        payload = json.dumps(_PAYLOAD_TOO_LARGE).encode("utf-8")
    raw = payload if isinstance(payload, bytes) else payload.encode("utf-8")
    answer: dict[str, Any] = {"StatusCode": 200, "Payload": lambda_eval_utils._from_payload(io.BytesIO(raw))}
    if "x-amz-function-error" in response_headers:
        answer["FunctionError"] = response_headers["x-amz-function-error"]
    return answer


# --- 7. Step Functions: bounded admission ---------------------------------------------------
@dataclass(eq=False)
class Admission:
    """One execution's place in the gate: ``admitted`` once it may run."""

    event: threading.Event = field(default_factory=threading.Event)
    admitted: bool = False


class ExecutionGate:
    """At most ``limit`` executions evaluate at once; the others wait in start order."""

    def __init__(self, limit: int = DEFAULT_MAX_RUNNING_EXECUTIONS) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._running = 0
        self._waiting: collections.deque[Admission] = collections.deque()

    def enter(self) -> Admission:
        """A place for a new execution: admitted now if there is room, else queued."""
        admission = Admission()
        with self._lock:
            if self._running < self.limit and not self._waiting:
                self._running += 1
                admission.admitted = True
                admission.event.set()
            else:
                self._waiting.append(admission)
        return admission

    def withdraw(self, admission: Admission) -> bool:
        """Take a queued execution out of the queue (stopped before it ran)."""
        with self._lock:
            if admission.admitted or admission not in self._waiting:
                return False
            self._waiting.remove(admission)
        admission.event.set()
        return True

    def leave(self) -> None:
        """An execution ended: its place goes to the longest waiting one."""
        with self._lock:
            if self._waiting and self._running <= self.limit:
                admitted = self._waiting.popleft()
                admitted.admitted = True
                admitted.event.set()
            else:
                self._running -= 1

    def set_limit(self, limit: int) -> None:
        with self._lock:
            self.limit = max(1, limit)
            while self._waiting and self._running < self.limit:
                admitted = self._waiting.popleft()
                admitted.admitted = True
                self._running += 1
                admitted.event.set()

    def counts(self) -> tuple[int, int]:
        """(running, waiting)."""
        with self._lock:
            return self._running, len(self._waiting)


gate = ExecutionGate()
_admissions: weakref.WeakKeyDictionary[ExecutionWorker, Admission] = weakref.WeakKeyDictionary()


def _run_when_admitted(worker: ExecutionWorker, admission: Admission) -> None:
    admission.event.wait()
    if not admission.admitted:
        return  # stopped while queued: _stop_even_if_queued ended it
    try:
        worker._execution_logic()
    finally:
        gate.leave()


def _start_through_gate(self: ExecutionWorker) -> None:
    """moto's ExecutionWorker.start (a thread in TMP_THREADS, started now, so whoever joins
    TMP_THREADS also waits for a queued execution), with the gate in front of the work."""
    admission = _admissions[self] = gate.enter()
    thread = threading.Thread(target=_run_when_admitted, args=(self, admission), daemon=True)
    TMP_THREADS.append(thread)
    thread.start()


def _stop_even_if_queued(self: ExecutionWorker, stop_date: Any, error: str | None, cause: str | None) -> None:
    """StopExecution of a queued execution: it never entered a state, so it ends ABORTED
    at once (moto's stop would find no environment yet)."""
    admission = _admissions.get(self)
    if admission is None or not gate.withdraw(admission):
        _originals["stop"](self, stop_date=stop_date, error=error, cause=cause)
        return
    from moto.stepfunctions.parser.api import (
        ExecutionAbortedEventDetails,
        ExecutionStartedEventDetails,
        HistoryEventExecutionDataDetails,
        HistoryEventType,
    )
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails as event_details_type
    from moto.stepfunctions.parser.asl.utils.encoding import to_json_str

    EventDetails: Any = event_details_type  # a TypedDict moto fills partially, as here
    details = self._evaluation_details
    env = self.env = self._get_evaluation_environment()
    env.event_manager.add_event(
        context=env.event_history_context, event_type=HistoryEventType.ExecutionStarted,
        event_details=EventDetails(executionStartedEventDetails=ExecutionStartedEventDetails(
            input=to_json_str(details.execution_details.inpt),
            inputDetails=HistoryEventExecutionDataDetails(truncated=False),
            roleArn=details.aws_execution_details.role_arn)),
        update_source_event_id=False,
    )
    # Running at its first state (as Program.eval would put it), then stopped there.
    env.next_state_name = json.loads(details.state_machine_details.definition).get("StartAt", "")
    env.set_stop(stop_date=stop_date, cause=cause, error=error)
    env.event_manager.add_event(
        context=env.event_history_context, event_type=HistoryEventType.ExecutionAborted,
        event_details=EventDetails(executionAbortedEventDetails=ExecutionAbortedEventDetails(error=error, cause=cause)),
    )
    self._execution_communication.terminated()


def configured_max_running_executions() -> int:
    value = os.environ.get(MAX_RUNNING_EXECUTIONS_ENV, "").strip()
    return max(1, int(value)) if value else DEFAULT_MAX_RUNNING_EXECUTIONS


# --- 8. DynamoDB update expressions: parse once, map once per pass -------------------------
class ParsedUpdateExpressions:
    """UpdateExpressionParser.make memoised by expression text (most recently used, at most
    ``size``), each tree kept with its pickled form. Sharing a tree is safe because
    nothing writes to it: moto's responses only search it (find_clauses), and its
    UpdateExpressionValidator transforms a deep copy, which ``copy`` makes from the
    pickle (a fresh tree, as deepcopy's, in a tenth of the time). Pinned by the guard test.
    Only successful parses are kept: a malformed expression raises again every time."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._by_text: collections.OrderedDict[str, tuple[Any, bytes]] = collections.OrderedDict()
        self._by_tree: dict[int, tuple[Any, bytes, str]] = {}
        #: (text, names, table keys) whose checks of the text alone passed (patch 14)
        self.checked: set[tuple[str, frozenset[tuple[str, str]], tuple[str, ...]]] = set()
        self._lock = threading.Lock()

    def parse(self, expression: str) -> Any:
        with self._lock:
            entry = self._by_text.get(expression)
            if entry is not None:
                self._by_text.move_to_end(expression)
                return entry[0]
        tree = _originals["update_parse"](expression)
        entry = (tree, pickle.dumps(tree, protocol=pickle.HIGHEST_PROTOCOL))
        with self._lock:
            self._by_text[expression] = entry
            self._by_tree[id(tree)] = (*entry, expression)
            while len(self._by_text) > self.size:
                evicted, _ = self._by_text.popitem(last=False)[1]
                self._by_tree.pop(id(evicted), None)
        return tree

    def copy(self, value: Any, memo: Any = None) -> Any:
        """``copy.deepcopy`` for moto's validators: a kept tree comes from its pickle."""
        entry = self._by_tree.get(id(value))
        if entry is not None and entry[0] is value:
            return pickle.loads(entry[1])
        return copy.deepcopy(value, memo)

    def text_of(self, tree: Any) -> str | None:
        """The expression a kept tree was parsed from (None: not a kept tree)."""
        entry = self._by_tree.get(id(tree))
        return entry[2] if entry is not None and entry[0] is tree else None

    def clear(self) -> None:
        with self._lock:
            self._by_text.clear()
            self._by_tree.clear()
            self.checked.clear()


update_expressions = ParsedUpdateExpressions(512)  # the project writes ~40 distinct texts


def _parse_update_expression_once(cls: type, expression: str) -> Any:
    if cls is not UpdateExpressionParser:  # a subclass parses as itself
        return _originals["update_parse"].__func__(cls, expression)
    return update_expressions.parse(expression)


_PARSE_ONCE: Any = classmethod(_parse_update_expression_once)  # one object: install/restore compare by identity
_PROCESSING_MAP, _NODE_CLASSES = "_hooks_processing_map", "_hooks_node_classes"


def _processing_items(traverser: DepthFirstTraverser) -> tuple[tuple[type, Callable[[Any], Any]], ...]:
    """The traverser's ``_processing_map()``, built once per traverser (moto builds a new
    one per node; each validator's map is a constant of its class, bound to itself)."""
    items = traverser.__dict__.get(_PROCESSING_MAP)
    if items is None:
        items = traverser.__dict__[_PROCESSING_MAP] = tuple(traverser._processing_map().items())
    return items  # type: ignore[no-any-return]


def _node_classes_once(self: DepthFirstTraverser) -> tuple[type, ...]:
    classes = self.__dict__.get(_NODE_CLASSES)
    if classes is None:
        classes = self.__dict__[_NODE_CLASSES] = tuple(node_class for node_class, _ in _processing_items(self))
    return classes  # type: ignore[no-any-return]


def _process_with_the_map_once(self: DepthFirstTraverser, node: Any) -> Any:
    for node_class, processor in _processing_items(self):
        if isinstance(node, node_class):
            return processor(node)
    return None


# isinstance against moto's node classes (ABCs: every check is an __instancecheck__) is a
# function of the node's type alone, so each answer is kept by type: about half of a
# validator pass was these checks. A race only computes the same answer twice.
_node_kinds: dict[type, bool] = {}  # type -> is it a Node
_descended_kinds: dict[type, bool] = {}  # type -> does find_clauses search inside it
#: traverser class -> node type -> the map index ``process`` uses for it (-1: none)
_processor_indexes: dict[type, dict[type, int]] = {}


def _processor_index(traverser: DepthFirstTraverser, kind: type) -> int:
    """Which entry of the map ``process`` calls for a node of this type: the first class
    it is an instance of (the map is a constant of the traverser's class; pinned)."""
    by_kind = _processor_indexes.setdefault(type(traverser), {})
    index = by_kind.get(kind)
    if index is None:
        index = by_kind[kind] = next((position for position, (node_class, _) in enumerate(_processing_items(traverser))
                                      if issubclass(kind, node_class)), -1)
    return index


def _traverse_by_type(self: DepthFirstTraverser, node: Any, child_id: int = -1) -> Any:
    """moto's traverse_node_recursively, statement for statement, with the type checks kept."""
    kind = type(node)
    is_node = _node_kinds.get(kind)
    if is_node is None:
        is_node = _node_kinds[kind] = issubclass(kind, _AstNode)
    if is_node:
        parent_node = node.parent
        if node.children is not None:
            for i, child_node in enumerate(node.children):
                self.pre_processing_of_child(node, i)
                self.traverse_node_recursively(child_node, i)
        index = _processor_index(self, kind)
        if index >= 0:
            node = _processing_items(self)[index][1](node)
            node.parent = parent_node
            if parent_node:
                parent_node.children[child_id] = node
    return node


def _find_clauses_by_type(self: Any, clause_types: list[type]) -> list[Any]:
    """moto's Node.find_clauses, with the type checks kept."""
    clauses = []
    for child in self.children or []:
        kind = type(child)
        if kind in clause_types:
            clauses.append(child)
            continue
        descend = _descended_kinds.get(kind)
        if descend is None:
            descend = _descended_kinds[kind] = issubclass(kind, (_AstExpression, _AstUpdateExpressionFunction))
        if descend:
            clauses.extend(child.find_clauses(clause_types))
    return clauses


# --- 14. DynamoDB update validation: the checks of the text, once per text -----------------
#: The first passes of moto's UpdateExpressionValidator: they raise or pass on the tree, the
#: ExpressionAttributeNames and the table's keys alone (never the values or the item).
_TEXT_CHECKS = (ActionCountValidator, OverlappingPathsValidator, UpdateHashRangeKeyValidator)
_CHECKED_KEEP = 4096


def _validator_init_keeping_the_tree(self: UpdateExpressionValidator, expression: Any, *args: Any,
                                     **kwargs: Any) -> None:
    Validator.__init__(self, expression, *args, **kwargs)
    self.__dict__["_hooks_tree"] = expression


def _checked_key(self: UpdateExpressionValidator) -> Any:
    text = update_expressions.text_of(self.__dict__.get("_hooks_tree"))
    if text is None or tuple(type(processor) for processor in self.processors[:len(_TEXT_CHECKS)]) != _TEXT_CHECKS:
        return None
    return text, frozenset((self.expression_attribute_names or {}).items()), tuple(self.table.table_key_attrs)


def _validate_checking_each_text_once(self: UpdateExpressionValidator) -> Any:
    """moto's Validator.validate, skipping the checks of the text when this text, with
    these names, on a table with these keys, already passed them."""
    key = _checked_key(self)
    checks, rest = self.processors[:len(_TEXT_CHECKS)], self.processors[len(_TEXT_CHECKS):]
    node = self.node_to_validate
    if key is None or key not in update_expressions.checked:
        for processor in checks:
            node = processor.traverse(node)
        if key is not None:  # passed: recorded (a text that fails is checked every time)
            if len(update_expressions.checked) >= _CHECKED_KEEP:
                update_expressions.checked.clear()
            update_expressions.checked.add(key)
    for processor in rest:
        node = processor.traverse(node)
    return node


# --- 9. moto's dispatch: each handler class's methods listed once ---------------------------
@functools.cache
def _method_names_once(clazz: type) -> list[str]:
    return _originals["method_names"](clazz)  # type: ignore[no-any-return]


# --- 10. DynamoDB attribute values: the wire form as it is ---------------------------------
def _is_wire_form(value: Any) -> bool:
    """Whether an AttributeValue is already exactly what moto's serialiser would emit:
    one type key, and only str / bool / the NULL marker / maps and lists of the same."""
    if type(value) is not dict or len(value) != 1:
        return False
    ((kind, inner),) = value.items()
    if kind in ("S", "N"):
        return type(inner) is str
    if kind == "M":
        return type(inner) is dict and all(type(name) is str and _is_wire_form(item) for name, item in inner.items())
    if kind == "L":
        return type(inner) is list and all(_is_wire_form(item) for item in inner)
    if kind == "BOOL":
        return type(inner) is bool
    if kind == "NULL":
        return inner is True
    if kind in ("SS", "NS"):
        return type(inner) is list and all(type(item) is str for item in inner)
    return False  # B, BS: moto base64-encodes them


def _serialize_structure_plainly(self: Any, serialized: Any, value: Any, shape: Any, key: str) -> None:
    if key and shape.name == "AttributeValue" and _is_wire_form(value):
        self._default_serialize(serialized, value, shape, key)
        return
    _originals["attribute_values_out"](self, serialized, value, shape, key)


_PLAIN_SCALARS = (str, int, bool, float, type(None))
#: An item's attributes are a LimitedSizeDict (a dict that checks the item's size on each
#: set); moto converts it as the dict it is. Left to moto's cascade, every answer's items
#: were, a seventh of a status poll's CPU.
_DICTS = (dict, LimitedSizeDict)


def _dynamo_to_dict_by_type(value: Any) -> Any:
    """moto's dynamo_to_dict, by exact type: a DynamoType of a non-binary kind becomes
    ``{type: its value, converted}``, dicts and lists are converted item by item, plain
    scalars stay (an item's LimitedSizeDict is a dict here); anything else (binaries,
    datetimes, objects with to_json, other subclasses) is moto's own conversion."""
    kind = type(value)
    if kind in _DICTS:
        return {key: _dynamo_to_dict_by_type(item) for key, item in value.items()}
    if kind is list:
        return [_dynamo_to_dict_by_type(item) for item in value]
    if kind in _PLAIN_SCALARS:
        return value
    if kind is DynamoType and value.type not in ("B", "BS"):
        return {value.type: _dynamo_to_dict_by_type(value.value)}
    return _originals["dynamo_to_dict"](value)


def _parse_structure_plainly(self: Any, shape: Any, value: Any) -> Any:
    # The value is the request's own json.loads result: handing it on shares nothing.
    if shape.name == "AttributeValue" and _is_wire_form(value):
        return value
    return _originals["attribute_values_in"](self, shape, value)


# --- 12. Step Functions JSONPath: parse each path once -------------------------------------
#: Path texts kept parsed: the definitions hold a few dozen.
JSONPATH_CACHE_SIZE = 1024


@functools.lru_cache(maxsize=JSONPATH_CACHE_SIZE)
def _jsonpath_ext_parsed_once(path: str) -> Any:
    return _originals["jsonpath"](path)


@functools.lru_cache(maxsize=JSONPATH_CACHE_SIZE)
def _jsonpath_parsed_once(path: str) -> Any:
    return _originals["jsonpath_result"](path)


# --- 13. Signing: none for moto ------------------------------------------------------------
def _sign_unless_moto_answers(self: RequestSigner, *args: Any, **kwargs: Any) -> None:
    if botocore_stubber.enabled:  # moto answers this request: nothing checks a signature
        return
    _originals["unsigned"](self, *args, **kwargs)


# --- 17. Cognito: moto's signing key imported once -------------------------------------
class _RSAKeyImportingMotosKeyOnce:
    """joserfc's RSAKey as moto.cognitoidp.models sees it (its only use: ``import_key`` of
    moto's fixed key, once per user pool): the same input hands back the first import's
    key; any other call is joserfc's own."""

    def __init__(self, rsa_key: Any) -> None:
        self._real = rsa_key
        self._lock = threading.Lock()
        self._imported: tuple[Any, Any] | None = None  # (input, key)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def import_key(self, value: Any, *args: Any, **kwargs: Any) -> Any:
        if args or kwargs:
            return self._real.import_key(value, *args, **kwargs)
        with self._lock:
            if self._imported is None or self._imported[0] != value:
                self._imported = (value, self._real.import_key(value))
            return self._imported[1]


class _JwkWithMotosKeyImportedOnce:
    """What moto.cognitoidp.models calls ``jwk``: joserfc's module, its RSAKey as above."""

    def __init__(self, jwk_module: Any) -> None:
        self._jwk = jwk_module
        self.RSAKey = _RSAKeyImportingMotosKeyOnce(jwk_module.RSAKey)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._jwk, name)


_JWK_IMPORTING_ONCE = _JwkWithMotosKeyImportedOnce(cognitoidp_models.jwk)


# --- Installing ---------------------------------------------------------------------------
def _patches() -> dict[str, list[tuple[Any, str, Any]]]:
    """Name -> the (owner, attribute, replacement) it sets. The first attribute's
    original is kept as _originals[name]; the replacements call it."""
    return {
        "lambda": [(LambdaFunction, "_invoke_lambda", _invoke_in_process)],
        "dynamodb": [(DynamoHandler, "call_action", _serialised_call_action)],
        "transact": [(DynamoDBBackend, "transact_write_items", _transact_backing_up_items),
                     (dynamodb_models, "copy", _CopyWithoutTableBackups())],
        "query": [(Table, "query", _query_one_partition)],
        "all_items": [(Table, "all_items", _all_items_or_the_queried_partition)],
        "parse": [(ExecutionWorker, "_get_evaluation_entrypoint", _cached_entrypoint)],
        "validate": [(StepFunctionsParserBackend, "_validate_definition", _VALIDATE_THROUGH_THE_CACHE)],
        "signing_key": [(cognitoidp_models, "jwk", _JWK_IMPORTING_ONCE)],
        "boto_client_for": [(lambda_eval_utils, "boto_client_for", _shared_boto_client_for)],
        "start": [(ExecutionWorker, "start", _start_through_gate)],
        "stop": [(ExecutionWorker, "stop", _stop_even_if_queued)],
        "update_parse": [(UpdateExpressionParser, "make", _PARSE_ONCE),
                         (dynamodb_validators, "deepcopy", update_expressions.copy)],
        "traverse": [(DepthFirstTraverser, "nodes_to_be_processed", _node_classes_once),
                     (DepthFirstTraverser, "process", _process_with_the_map_once)],
        "node_types": [(DepthFirstTraverser, "traverse_node_recursively", _traverse_by_type),
                       (_AstNode, "find_clauses", _find_clauses_by_type)],
        "method_names": [(core_responses, "method_names_from_class", _method_names_once)],
        "attribute_values_out": [(BaseJSONSerializer, "_serialize_type_structure", _serialize_structure_plainly)],
        "attribute_values_in": [(BaseJSONParser, "_parse_structure", _parse_structure_plainly)],
        "dynamo_to_dict": [(dynamodb_responses, "dynamo_to_dict", _dynamo_to_dict_by_type)],
        "jsonpath": [(sfn_json_path, "parse", _jsonpath_ext_parsed_once)],
        "jsonpath_result": [(sfn_result_path, "parse", _jsonpath_parsed_once)],
        "unsigned": [(RequestSigner, "sign", _sign_unless_moto_answers)],
        "lambda_direct": [(lambda_eval_utils, "_invoke_lambda_function", _invoke_through_the_backend)],
        "update_checks": [(UpdateExpressionValidator, "validate", _validate_checking_each_text_once),
                          (UpdateExpressionValidator, "__init__", _validator_init_keeping_the_tree)],
    }


#: The patches that make local execution cheaper, not different: what the benchmark
#: switches off to price them (with the gate, which bench/e2e measures separately).
PERFORMANCE_PATCHES = ("query", "all_items", "parse", "boto_client_for", "update_parse", "traverse",
                       "node_types", "method_names", "attribute_values_out", "attribute_values_in",
                       "dynamo_to_dict", "jsonpath", "jsonpath_result", "unsigned", "update_checks",
                       "lambda_direct", "validate", "signing_key")
_replaced: dict[str, list[tuple[Any, str, Any]]] = {}  # name -> (owner, attribute, original)


_INHERITED = object()  # the attribute was the base class's: restoring deletes ours


def _apply(name: str, targets: list[tuple[Any, str, Any]]) -> None:
    if name in _replaced:
        return
    # A class's own __dict__ entry, not getattr: restoring must put back exactly what was
    # there (a staticmethod stays one), or nothing if the attribute was inherited.
    _replaced[name] = [(owner, attribute, owner.__dict__.get(attribute, _INHERITED) if isinstance(owner, type)
                        else getattr(owner, attribute)) for owner, attribute, _ in targets]
    _originals[name] = getattr(targets[0][0], targets[0][1])
    for owner, attribute, replacement in targets:
        setattr(owner, attribute, replacement)


def _restore(name: str) -> None:
    for owner, attribute, original in reversed(_replaced.pop(name, [])):
        if original is _INHERITED:
            delattr(owner, attribute)
        else:
            setattr(owner, attribute, original)
    _originals.pop(name, None)


#: Tests only: a `chalice local` started with this variable scales its retry sleeps.
RETRY_WAIT_FACTOR_ENV = "EMBEDDED_RETRY_WAIT_FACTOR"


def scale_retry_waits(factor: float) -> None:
    """Tests only: moto really sleeps between retries (IntervalSeconds x BackoffRate^n).
    Multiply those sleeps by ``factor`` so a suite exercising retries stays fast; the
    definition itself is unchanged."""
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

    real_sleep = _originals.setdefault("retry_sleep", time.sleep)
    retrier_decl.time = types.SimpleNamespace(sleep=lambda seconds: real_sleep(seconds * factor))  # type: ignore[assignment]


def scale_retry_waits_as_configured() -> None:
    """A test's `chalice local`: its retry sleeps scaled by EMBEDDED_RETRY_WAIT_FACTOR
    (a compensation's five attempts sleep 23 s as deployed); unset, they are as deployed."""
    value = os.environ.get(RETRY_WAIT_FACTOR_ENV, "").strip()
    if value:
        scale_retry_waits(float(value))


def install(handlers: dict[str, Handler], *, max_running_executions: int | None = None) -> None:
    """Register handlers by function name and patch moto (idempotent). At most
    ``max_running_executions`` executions evaluate at once (default: the environment's
    EMBEDDED_MAX_RUNNING_EXECUTIONS, else DEFAULT_MAX_RUNNING_EXECUTIONS)."""
    _handlers.clear()
    _handlers.update(handlers)
    gate.set_limit(max_running_executions or configured_max_running_executions())
    for name, targets in _patches().items():
        _apply(name, targets)


def uninstall() -> None:
    """moto as it was. The caches of parsed texts stay (16): the next stack reuses them."""
    for name in list(_replaced):
        _restore(name)
    with _clients_lock:
        _clients.clear()
    _handlers.clear()
    _dynamodb_observers.clear()


def clear_caches() -> None:
    """Forget every parsed definition, update expression and JSONPath."""
    programs.clear()
    update_expressions.clear()
    _jsonpath_ext_parsed_once.cache_clear()
    _jsonpath_parsed_once.cache_clear()


@contextlib.contextmanager
def unpatched(*names: str) -> Iterator[None]:
    """Benchmarks and tests: moto's own behaviour for the named patches while the block
    runs (nothing may be evaluating through them when it starts or ends)."""
    targets = _patches()
    removed = [name for name in names if name in _replaced]
    for name in removed:
        _restore(name)
    try:
        yield
    finally:
        for name in removed:
            _apply(name, targets[name])
