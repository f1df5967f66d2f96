"""The embedded backend bends moto at the points local/hooks.py lists; if a moto upgrade
moves one, these fail loudly instead of the saga silently not running (or a patch
silently changing what moto answers). Then the behaviour of the patches themselves:
install/uninstall, the one-partition Query, the program cache, the shared Lambda client
and the execution gate."""

from __future__ import annotations

import ast
import functools
import gc
import inspect
import json
import operator
import os
import socketserver
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import moto
import pytest
from moto.awslambda.models import LambdaFunction
from moto.dynamodb.models.table import Table
from moto.dynamodb.responses import DynamoHandler
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.eval_component import EvalComponent
from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
from moto.stepfunctions.parser.asl.utils import boto_client
from moto.stepfunctions.parser.backend.execution import Execution
from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker, SyncExecutionWorker

from chalicelib.schema import BOOKINGS_BY_CUSTOMER, TABLES, TABLES_BY_NAME
from deploy import asl
from local import hooks

COMPONENTS_DIR = Path(inspect.getfile(EvalComponent)).parent


def _squeezed(source: str) -> str:
    return " ".join(source.split())


# --- Guards: the targets ------------------------------------------------------------------
def test_moto_is_the_pinned_version() -> None:
    assert moto.__version__ == "5.2.5", "re-check local/hooks.py before moving moto"


def test_lambda_invocation_has_one_entry_point() -> None:
    parameters = list(inspect.signature(LambdaFunction._invoke_lambda).parameters)
    assert parameters == ["self", "event"]
    assert "self._invoke_lambda(event=body)" in inspect.getsource(LambdaFunction.invoke)


def test_dynamodb_requests_go_through_call_action() -> None:
    assert callable(DynamoHandler.call_action)


def test_retry_waits_sleep_through_the_time_module() -> None:
    assert "time.sleep(interval_seconds)" in inspect.getsource(retrier_decl)


@pytest.mark.parametrize("configured", ["0.1", ""])
def test_a_test_server_scales_its_retry_waits_as_its_environment_says(
    monkeypatch: pytest.MonkeyPatch, configured: str,
) -> None:
    """EMBEDDED_RETRY_WAIT_FACTOR (tests' `chalice local`) scales a retry's sleep; unset,
    the retrier sleeps through the time module itself, as deployed."""
    sleeps: list[float] = []
    monkeypatch.setitem(hooks._originals, "retry_sleep", sleeps.append)
    monkeypatch.setattr(retrier_decl, "time", time)  # as deployed: unscaled
    monkeypatch.setenv(hooks.RETRY_WAIT_FACTOR_ENV, configured)

    hooks.scale_retry_waits_as_configured()

    if configured:
        retrier_decl.time.sleep(4.0)
        assert sleeps == [pytest.approx(0.4)]
    else:
        assert retrier_decl.time is time


def test_transactions_back_up_whole_tables_through_the_module_copy() -> None:
    """The hook replaces exactly this backup; if moto changes how it rolls back, re-check."""
    import moto.dynamodb.models as dynamodb_models
    from moto.dynamodb.models import DynamoDBBackend

    source = inspect.getsource(DynamoDBBackend.transact_write_items)
    assert "copy.deepcopy(\n                    self.tables[table_name]" in source
    assert "self.tables[table_name] = original_table_state[table_name]" in source
    assert callable(dynamodb_models.copy.deepcopy)


def test_a_base_table_query_takes_its_candidates_from_all_items() -> None:
    """The one-partition Query answers that single all_items() call; the rest is moto's."""
    parameters = list(inspect.signature(Table.query).parameters)
    assert parameters[:9] == ["self", "hash_key", "range_comparison", "range_objs", "limit",
                              "exclusive_start_key", "scan_index_forward", "projection_expressions", "index_name"]
    source = _squeezed(inspect.getsource(Table.query))
    base_table = source.split("else: hash_attrs = [self.hash_key_attr]", 1)[1].split("# SORT", 1)[0]
    assert base_table.strip() == ("range_attrs = [self.range_key_attr] possible_results = [ item for item in "
                                  "self.all_items() if isinstance(item, Item) and item.hash_key == hash_key ]")
    assert "possible_results.sort(key=lambda item: item.range_key)" in source
    assert source.count("self.all_items()") == 2  # the index branch's and the base table's
    assert "self.items = defaultdict(dict)" in inspect.getsource(Table.__init__)
    assert "for hash_set in self.items.values()" in inspect.getsource(Table.all_items)


def test_executions_get_their_program_from_one_method() -> None:
    assert "program = self._get_evaluation_entrypoint()" in inspect.getsource(ExecutionWorker._execution_logic)
    assert "AmazonStateLanguageParser.parse(" in inspect.getsource(ExecutionWorker._get_evaluation_entrypoint)


def test_heap_keys_are_assigned_lazily_on_the_component() -> None:
    """ProgramCache assigns them before sharing a program; tests/saga/test_engine.py
    replays this property with a wider window."""
    source = _squeezed(inspect.getsource(EvalComponent.heap_key.fget))  # type: ignore[attr-defined]
    assert "if self.__heap_key is None: self.__heap_key = long_uid() return self.__heap_key" in source


def _state_kept_on_self(path: Path) -> set[str]:
    """``Class.attribute`` for every assignment to, or mutating call on, an attribute of
    ``self`` in a method other than __init__ and the parse-time builders."""
    builders = {"__init__", "from_state_props", "from_retrier_props", "from_catcher_props"}
    mutators = {"append", "extend", "pop", "popleft", "clear", "update", "add", "remove", "insert",
                "setdefault", "discard"}
    found = set()
    for cls in (node for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.ClassDef)):
        for method in (node for node in cls.body if isinstance(node, ast.FunctionDef)):
            if method.name in builders:
                continue
            for node in ast.walk(method):
                targets: list[ast.expr] = []
                if isinstance(node, ast.Assign):
                    targets = list(node.targets)
                elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
                    targets = [node.target]
                elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                      and node.func.attr in mutators):
                    targets = [node.func.value]
                for target in targets:
                    while isinstance(target, ast.Subscript):
                        target = target.value
                    if (isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name)
                            and target.value.id == "self"):
                        found.add(f"{cls.name}.{target.attr}")
    return found


# Every attribute a component module sets outside construction, and why that is no
# per-execution state shared through a cached program: the lazily assigned heap key
# (assigned by ProgramCache before sharing), or an object built per evaluation or per
# Environment (Map's job pool, map-run record and counters; Parallel's worker pool;
# iteration workers), never stored on a parsed component.
KNOWN_STATE_ON_SELF = {
    "EvalComponent._EvalComponent__heap_key",  # the name-mangled __heap_key
    "Counter._count", "MapRunRecord.status", "MapRunRecord.stop_date", "MapRunRecord.max_concurrency",
    "MapRunRecord.tolerated_failure_count", "MapRunRecord.tolerated_failure_percentage",
    "MapRunRecordPoolManager._pool", "IterationWorker._stop_signal_received", "JobPool._open_jobs",
    "JobPool._worker_exception", "JobPool._closed_jobs", "BranchWorker._worker_thread",
    "BranchWorkerPool._terminated_with_error", "BranchWorkerPool._active_workers_num",
}


def test_no_component_keeps_execution_state_on_itself() -> None:
    """GIVEN every module under moto's asl/component WHEN scanned for state set on self
    outside construction THEN it is exactly the reviewed list: a new entry means a
    cached program might carry one execution's state into another; review it."""
    found: set[str] = set()
    for path in sorted(COMPONENTS_DIR.rglob("*.py")):
        found |= {entry.replace(".__heap_key", "._EvalComponent__heap_key") for entry in _state_kept_on_self(path)}
    assert found == KNOWN_STATE_ON_SELF


def test_lambda_tasks_build_a_client_per_task_through_boto_client_for() -> None:
    """The shared client replaces lambda_eval_utils' boto_client_for, which signs with
    fixed keys whatever the state's credentials (so the cache key needs no secret)."""
    assert lambda_eval_utils.boto_client_for is boto_client.boto_client_for or hooks._replaced
    assert "lambda_client = boto_client_for(" in inspect.getsource(lambda_eval_utils._invoke_lambda_function)
    source = inspect.getsource(boto_client.boto_client_for)
    assert list(inspect.signature(boto_client.boto_client_for).parameters) == ["region", "service",
                                                                              "state_credentials"]
    assert 'aws_access_key_id="ak"' in source and source.count("state_credentials") == 1
    assert "intercepting_boto_calls = botocore_stubber.enabled" in source
    assert 'kwargs["endpoint_url"] = f"http://localhost:{moto_server_port()}"' in source


def test_an_execution_is_one_thread_in_tmp_threads_started_by_its_worker() -> None:
    """The gate wraps this thread; Execution.start reports RUNNING before it starts, so
    a queued execution is RUNNING; synchronous (express) executions bypass start."""
    start = _squeezed(inspect.getsource(ExecutionWorker.start))
    assert "Thread(target=self._execution_logic, daemon=True)" in start
    assert "TMP_THREADS.append(execution_logic_thread)" in start
    assert "self.env.set_stop(" in inspect.getsource(ExecutionWorker.stop)
    execution_start = inspect.getsource(Execution.start)
    assert execution_start.index("ExecutionStatus.RUNNING") < execution_start.index("self.exec_worker.start()")
    assert "start" in SyncExecutionWorker.__dict__
    assert "if env is not None:" in inspect.getsource(Execution.to_history_output)


def test_chalice_local_listens_with_its_server_class_backlog() -> None:
    from chalice import local

    assert inspect.signature(local.LocalDevServer.__init__).parameters["server_cls"].default \
        is local.ThreadedHTTPServer
    assert "self.socket.listen(self.request_queue_size)" in inspect.getsource(socketserver.TCPServer.server_activate)


def test_chalice_local_answers_without_nagle_once_told() -> None:
    """local.embedded sets the handler's class attribute; socketserver's setup is what
    turns it into TCP_NODELAY on every accepted connection."""
    from chalice import local

    from local import embedded

    assert issubclass(local.ChaliceRequestHandler, socketserver.StreamRequestHandler)
    assert "if self.disable_nagle_algorithm:" in inspect.getsource(socketserver.StreamRequestHandler.setup)
    saved = local.ChaliceRequestHandler.__dict__.get("disable_nagle_algorithm")
    try:
        embedded.answer_without_nagle()
        assert local.ChaliceRequestHandler.disable_nagle_algorithm is True
    finally:
        if saved is None:
            del local.ChaliceRequestHandler.disable_nagle_algorithm
        else:
            local.ChaliceRequestHandler.disable_nagle_algorithm = saved


def test_chalice_local_does_a_requests_work_in_local_gateway_handle_request() -> None:
    """local.embedded bounds the requests inside handle_request; reading the body and
    writing the answer happen around it."""
    from chalice import local

    assert list(inspect.signature(local.LocalGateway.handle_request).parameters) == [
        "self", "method", "path", "headers", "body"]
    source = inspect.getsource(local.ChaliceRequestHandler._generic_handle)
    assert source.index("self._parse_payload()") < source.index("self.local_gateway.handle_request(") \
        < source.index("self._send_http_response(")
    assert local.ChaliceRequestHandler.do_POST is local.ChaliceRequestHandler._generic_handle


def test_update_expressions_are_parsed_by_make_and_validated_on_a_deep_copy() -> None:
    """The parse cache shares one tree per text: safe while moto only searches it and its
    validator transforms a deep copy made by the module's ``deepcopy`` (which the hook
    answers from the tree's pickle)."""
    import copy

    import moto.dynamodb.parsing.validators as validators
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser  # type: ignore[attr-defined]

    assert "UpdateExpressionParser.make(update_expression)" in inspect.getsource(DynamoDBBackend.update_item)
    assert "UpdateExpressionParser.make(update_expression)" in inspect.getsource(DynamoHandler.update_item)
    assert "UpdateExpressionParser.make(update_expression)" in inspect.getsource(DynamoHandler.transact_write_items)
    assert isinstance(UpdateExpressionParser.__dict__["make"], classmethod) or hooks._replaced.get("update_parse")
    assert "self.node_to_validate = deepcopy(expression)" in inspect.getsource(validators.Validator.__init__)
    assert validators.deepcopy is copy.deepcopy or hooks._replaced.get("update_parse")
    # What the responses do with the shared tree: search it, never change it.
    for method in (DynamoHandler.update_item, DynamoHandler.transact_write_items):
        uses = [line.strip() for line in inspect.getsource(method).splitlines() if "update_expression_ast" in line]
        assert all("= UpdateExpressionParser.make(" in use or "update_expression_ast.find_clauses(" in use
                   for use in uses), uses


def test_each_validator_pass_has_a_constant_processing_map() -> None:
    """The hook builds a traverser's ``_processing_map()`` once per traverser: every
    validator's map must be a dict literal of its own methods, and none may override how
    the map is used."""
    import moto.dynamodb.parsing.validators as validators
    from moto.dynamodb.parsing.ast_nodes import DepthFirstTraverser  # type: ignore[attr-defined]

    traversers = [value for value in vars(validators).values() if isinstance(value, type)
                  and issubclass(value, DepthFirstTraverser) and value is not DepthFirstTraverser]
    assert len(traversers) >= 10
    for traverser in traversers:
        assert "nodes_to_be_processed" not in vars(traverser) and "process" not in vars(traverser), traverser
        body = ast.parse(textwrap.dedent(inspect.getsource(vars(traverser)["_processing_map"]))).body[0]
        assert isinstance(body, ast.FunctionDef)
        statements = [node for node in body.body
                      if not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))]  # a docstring
        assert len(statements) == 1 and isinstance(statements[0], ast.Return), traverser
        returned = statements[0].value
        assert isinstance(returned, ast.Dict), traverser
        assert all(isinstance(value, ast.Attribute) and isinstance(value.value, ast.Name) and value.value.id == "self"
                   for value in returned.values), traverser
    source = inspect.getsource(DepthFirstTraverser.traverse_node_recursively)
    assert "isinstance(node, self.nodes_to_be_processed())" in source and "self.process(node)" in source


def test_the_node_type_checks_are_the_ones_the_hook_keeps_by_type() -> None:
    """_traverse_by_type and _find_clauses_by_type are moto's two methods with each
    isinstance answered by the node's type: if moto changes either body, re-check them."""
    from moto.dynamodb.parsing.ast_nodes import DepthFirstTraverser, Node  # type: ignore[attr-defined]

    traverse = "".join(line.strip() for line in inspect.getsource(DepthFirstTraverser.traverse_node_recursively)
                       .split('"""')[2].splitlines())
    assert traverse == (
        "if isinstance(node, Node):parent_node = node.parentif node.children is not None:"
        "for i, child_node in enumerate(node.children):self.pre_processing_of_child(node, i)"
        "self.traverse_node_recursively(child_node, i)# noinspection PyTypeChecker"
        "if isinstance(node, self.nodes_to_be_processed()):node = self.process(node)node.parent = parent_node"
        "if parent_node:parent_node.children[child_id] = nodereturn node")
    find = "".join(line.strip() for line in inspect.getsource(Node.find_clauses).splitlines()[1:])
    assert find == (
        "clauses = []for child in self.children or []:if type(child) in clause_types:clauses.append(child)"
        "elif isinstance(child, Expression):clauses.extend(child.find_clauses(clause_types))"
        "elif isinstance(child, UpdateExpressionFunction):clauses.extend(child.find_clauses(clause_types))"
        "return clauses")
    # No class registers virtual subclasses: an answer by type is the isinstance answer.
    import moto.dynamodb.parsing.ast_nodes as ast_nodes

    assert "register(" not in inspect.getsource(ast_nodes)


def test_jsonpaths_are_parsed_where_the_hook_parses_them_once() -> None:
    from moto.stepfunctions.parser.asl.component.common.path.result_path import ResultPath
    from moto.stepfunctions.parser.asl.utils import json_path

    assert "input_expr = parse(path)" in inspect.getsource(json_path.extract_json)
    assert "result_expr = parse(self.result_path_src)" in inspect.getsource(ResultPath._eval_body)


def test_a_jsonpath_parsed_once_finds_and_updates_as_a_fresh_parse(bare_moto: None) -> None:
    """Every path of both definitions: the kept expression is the same object each time,
    and it reads and writes a document exactly as a fresh parse does, leaving itself
    unchanged."""
    from jsonpath_ng import parse as parse_plain
    from jsonpath_ng.ext import parse as parse_ext

    hooks.install({})
    try:
        paths = sorted({path for kind in ("booking", "cancellation") for path in _jsonpaths(asl.load(kind))})
        assert len(paths) >= 10
        document = {"booking_id": "b", "legs": [{"leg": 0}, {"leg": 1}], "ReserveSeatsResult": {"legs": [1]}}
        for path in paths:
            kept = hooks._jsonpath_ext_parsed_once(path)
            assert hooks._jsonpath_ext_parsed_once(path) is kept
            assert [m.value for m in kept.find(document)] == [m.value for m in parse_ext(path).find(document)]
            written = hooks._jsonpath_parsed_once(path).update_or_create(json.loads(json.dumps(document)), {"x": 1})
            assert written == parse_plain(path).update_or_create(json.loads(json.dumps(document)), {"x": 1})
            assert str(kept) == str(parse_ext(path))
    finally:
        hooks.uninstall()


def _jsonpaths(node: Any) -> list[str]:
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, str) and value.startswith("$") and not value.startswith("$$") and (
                    key.endswith(".$") or key in ("InputPath", "OutputPath", "ResultPath", "ItemsPath")):
                found.append(value)
            found += _jsonpaths(value)
    elif isinstance(node, list):
        for value in node:
            found += _jsonpaths(value)
    return found


def test_dispatch_lists_the_handler_methods_on_every_request() -> None:
    from moto.core.responses import BaseResponse

    assert "method_names = method_names_from_class(self.__class__)" in inspect.getsource(BaseResponse.call_action)


def test_attribute_values_pass_through_one_structure_method_each_way() -> None:
    from moto.core.parse import BaseJSONParser
    from moto.core.serialize import BaseJSONSerializer, ResponseSerializer

    assert "super()._serialize_type_structure(serialized, value, shape, key)" in inspect.getsource(
        BaseJSONSerializer._serialize_type_structure)
    assert "def _default_serialize(" in inspect.getsource(ResponseSerializer)
    assert "member_shape.serialization.get(\"name\", member_name)" in inspect.getsource(BaseJSONParser._parse_structure)


def test_answers_are_made_plain_by_dynamo_to_dict() -> None:
    import moto.dynamodb.responses as responses
    from moto.dynamodb.models.utilities import dynamo_to_dict

    assert "transformed_result = dynamo_to_dict(result)" in inspect.getsource(responses.DynamoResult.__init__)
    assert responses.dynamo_to_dict is dynamo_to_dict or hooks._replaced.get("dynamo_to_dict")
    source = inspect.getsource(dynamo_to_dict)
    assert 'if obj.type == "B":' in source and 'if obj.type == "BS":' in source
    assert "return {obj.type: dynamo_to_dict(obj.value)}" in source
    # An item's attributes are a LimitedSizeDict, which moto converts as the dict it is.
    from moto.dynamodb.models.dynamo_type import DynamoType, Item, LimitedSizeDict

    assert issubclass(LimitedSizeDict, dict) and not hasattr(LimitedSizeDict, "to_json")
    assert type(Item(DynamoType({"S": "k"}), None, {"a": {"S": "v"}}).attrs) is LimitedSizeDict
    assert "if isinstance(obj, dict):" in source


def test_moto_reads_no_signature_and_defaults_to_the_embedded_account() -> None:
    from moto.core.botocore_stubber import BotocoreStubber
    from moto.core.models import botocore_stubber
    from moto.core.responses import BaseResponse
    from moto.iam.models import get_account_id_from

    assert isinstance(botocore_stubber, BotocoreStubber)
    assert "if not self.enabled:" in inspect.getsource(BotocoreStubber.__call__)
    assert 'return "AKIAEXAMPLE"' in inspect.getsource(BaseResponse.get_access_key)
    assert get_account_id_from("AKIAEXAMPLE") == get_account_id_from("test") == moto.core.DEFAULT_ACCOUNT_ID


def test_requests_go_unsigned_while_moto_answers_them_and_signed_otherwise(
        bare_moto: None, monkeypatch: pytest.MonkeyPatch) -> None:
    from botocore.awsrequest import AWSRequest
    from moto.core.models import botocore_stubber

    hooks.install({})
    client = boto3.client("dynamodb")
    sent: list[bytes | None] = []
    client.meta.events.register("before-send", lambda request, **_: sent.append(request.headers.get("Authorization")))
    client.list_tables()
    with hooks.unpatched("unsigned"):
        client.list_tables()
    assert sent[0] is None and (sent[1] or b"").startswith(b"AWS4-HMAC-SHA256 Credential=")
    monkeypatch.setattr(botocore_stubber, "enabled", False)  # a real endpoint: signed as ever
    request = AWSRequest(method="POST", url="https://dynamodb.us-east-1.amazonaws.com/", data=b"{}")
    client._request_signer.sign("ListTables", request)
    assert request.headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=")


# --- install / uninstall ------------------------------------------------------------------
def _current(targets: dict[str, list[tuple[Any, str, Any]]]) -> dict[tuple[str, str], Any]:
    return {(name, attribute): (owner.__dict__.get(attribute) if isinstance(owner, type) else getattr(owner, attribute))
            for name, entries in targets.items() for owner, attribute, _ in entries}


def test_install_replaces_every_target_and_uninstall_puts_moto_back() -> None:
    """GIVEN moto as imported WHEN the hooks are installed THEN every target is replaced,
    and WHEN uninstalled THEN each is exactly moto's again (also within unpatched())."""
    hooks.uninstall()
    targets = hooks._patches()
    before = _current(targets)
    hooks.install({})
    try:
        installed = _current(targets)
        assert all(installed[key] is not before[key] for key in before)
        with hooks.unpatched(*hooks.PERFORMANCE_PATCHES):
            inside = _current(targets)
            assert all((inside[key] is before[key]) == (key[0] in hooks.PERFORMANCE_PATCHES) for key in before)
        assert _current(targets) == installed
    finally:
        hooks.uninstall()
    assert _current(targets) == before
    assert hooks.gate.limit == hooks.DEFAULT_MAX_RUNNING_EXECUTIONS


def test_the_limit_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(hooks.MAX_RUNNING_EXECUTIONS_ENV, "3")
    assert hooks.configured_max_running_executions() == 3
    monkeypatch.delenv(hooks.MAX_RUNNING_EXECUTIONS_ENV)
    assert hooks.configured_max_running_executions() == hooks.DEFAULT_MAX_RUNNING_EXECUTIONS


def test_a_failed_transaction_still_changes_nothing(aws: object) -> None:
    """GIVEN a transaction whose first operations would succeed (a new item, an update)
    and whose last condition fails WHEN it runs on the embedded backend THEN none of it
    is applied, as on AWS."""
    from chalicelib import db
    from chalicelib.errors import ConditionFailed

    before = db.get("seats", db.seat_key("SA101", "1A"))
    with pytest.raises(ConditionFailed) as raised:
        db.transact(
            payment=db.Put("payments", {"booking_id": "new", "status": "CAPTURED", "amount": 1}),
            seat=db.Update("seats", db.seat_key("SA101", "1A"), "SET #s = :held", names={"#s": "status"},
                           values={":held": "HELD"}),
            other_seat=db.Check("seats", db.seat_key("SA101", "2A"), condition="attribute_not_exists(seat)"),
        )
    assert raised.value.failed == {"other_seat"}  # reported by name, not position
    assert db.get("payments", db.payment_key("new")) is None
    assert db.get("seats", db.seat_key("SA101", "1A")) == before


# --- A bare moto with the hooks, for the patches' own tests ---------------------------------
@pytest.fixture
def bare_moto(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    from local.embedded import MOTO_CONFIG

    for key, value in {"AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "test",
                       "AWS_SECRET_ACCESS_KEY": "test"}.items():
        monkeypatch.setenv(key, value)
    with moto.mock_aws(config=MOTO_CONFIG):
        yield
    hooks.uninstall()


def _partitioned_tables() -> Any:
    """A hash+range table of 6 partitions x 30 items (values of every kind to sort,
    filter and project) and a hash-only table of 40 items."""
    client = boto3.client("dynamodb")
    client.create_table(TableName="log", BillingMode="PAY_PER_REQUEST",
                        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                                   {"AttributeName": "sk", "KeyType": "RANGE"}],
                        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                              {"AttributeName": "sk", "AttributeType": "S"}])
    client.create_table(TableName="plain", BillingMode="PAY_PER_REQUEST",
                        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
    for partition in range(6):
        for index in (7, 3, 29, 0, 12, *range(30)):  # out of order, rewritten: order is the key's
            client.put_item(TableName="log", Item={
                "pk": {"S": f"p{partition}"}, "sk": {"S": f"entry#{index:02d}"},
                "n": {"N": str((index * 7 + partition) % 11)}, "tag": {"S": "odd" if index % 2 else "even"},
                "blob": {"S": "x" * (index * 10)}, "nested": {"M": {"a": {"N": str(index)}, "b": {"S": "b"}}},
            })
    for index in range(40):
        client.put_item(TableName="plain", Item={"pk": {"S": f"k{index}"}, "n": {"N": str(index)}})
    return client


QUERIES: list[dict[str, Any]] = [
    {"TableName": "log", "KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": "p3"}}},
    {"TableName": "log", "KeyConditionExpression": "pk = :p AND sk BETWEEN :a AND :b",
     "ExpressionAttributeValues": {":p": {"S": "p1"}, ":a": {"S": "entry#05"}, ":b": {"S": "entry#20"}}},
    {"TableName": "log", "KeyConditionExpression": "pk = :p AND begins_with(sk, :a)",
     "ExpressionAttributeValues": {":p": {"S": "p2"}, ":a": {"S": "entry#1"}}},
    {"TableName": "log", "KeyConditionExpression": "pk = :p AND sk > :a", "ScanIndexForward": False,
     "ExpressionAttributeValues": {":p": {"S": "p0"}, ":a": {"S": "entry#10"}}},
    {"TableName": "log", "KeyConditionExpression": "pk = :p", "FilterExpression": "tag = :t AND n > :n",
     "ExpressionAttributeValues": {":p": {"S": "p4"}, ":t": {"S": "odd"}, ":n": {"N": "3"}}},
    {"TableName": "log", "KeyConditionExpression": "pk = :p", "ProjectionExpression": "sk, nested.a, #t",
     "ExpressionAttributeNames": {"#t": "tag"}, "ExpressionAttributeValues": {":p": {"S": "p5"}}},
    {"TableName": "log", "KeyConditionExpression": "pk = :p", "Select": "COUNT",
     "ExpressionAttributeValues": {":p": {"S": "p5"}}},
    {"TableName": "log", "KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": "none"}}},
    {"TableName": "plain", "KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": "k17"}}},
    {"TableName": "plain", "KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": "k99"}}},
]
PAGINATIONS: list[dict[str, Any]] = [{}, {"Limit": 1}, {"Limit": 7}, {"Limit": 7, "ScanIndexForward": False}]


def _every_page(client: Any, query: dict[str, Any]) -> list[dict[str, Any]]:
    pages, request = [], dict(query)
    while True:
        page = client.query(**request)
        page.pop("ResponseMetadata")
        pages.append(page)
        if "LastEvaluatedKey" not in page:
            return pages
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def test_a_query_reads_one_partition_and_answers_as_moto_does(bare_moto: None) -> None:
    """GIVEN tables of several partitions WHEN the same Queries (range conditions, a
    filter, a projection, COUNT, a missing partition, a hash-only table; every page at
    several limits, both orders) run with and without the patch THEN every page is
    identical, and the patched ones never list the whole table nor add a partition."""
    hooks.install({})
    client = _partitioned_tables()
    with hooks.unpatched("query", "all_items"):
        expected = [_every_page(client, {**query, **paging}) for query in QUERIES for paging in PAGINATIONS]
    whole_table_reads: list[str] = []
    real_all_items = hooks._originals["all_items"]

    def all_items_noted(table: Table) -> Any:
        whole_table_reads.append(table.name)
        return real_all_items(table)

    hooks._originals["all_items"] = all_items_noted
    try:
        answered = [_every_page(client, {**query, **paging}) for query in QUERIES for paging in PAGINATIONS]
    finally:
        hooks._originals["all_items"] = real_all_items
    assert answered == expected
    assert whole_table_reads == []
    assert sum(len(page["Items"]) for pages in answered for page in pages if "Items" in page) > 300
    assert max(len(pages) for pages in answered) == 30  # Limit 1 over a whole partition: a page per item
    backend_tables = {table.name: table for table in _dynamodb_backend().tables.values()}
    assert len(backend_tables["log"].items) == 6 and len(backend_tables["plain"].items) == 40


def _listing_pages(client: Any, customer: str, limit: int) -> list[list[dict[str, Any]]]:
    """Every page of a customer's bookings, newest first, as GET /bookings asks for them."""
    pages = []
    for page in _every_page(client, {
        "TableName": "bookings", "IndexName": BOOKINGS_BY_CUSTOMER.name, "Limit": limit,
        "ScanIndexForward": False, "KeyConditionExpression": "customer_id = :c",
        "ExpressionAttributeValues": {":c": {"S": customer}},
    }):
        pages.append([{key: value["S"] for key, value in item.items() if "S" in value} for item in page["Items"]])
    return pages


def test_an_index_query_spans_partitions_newest_first_page_by_page(bare_moto: None) -> None:
    """GIVEN the bookings table as chalicelib/schema.py declares it (its by_customer index),
    two customers' bookings written out of order, each booking its own partition, two of
    them made in the same microsecond
    WHEN one customer's bookings are listed newest first, a page of 1, 4 or 50 at a time
    (ExclusiveStartKey from each page's LastEvaluatedKey), with the one-partition patch on
    THEN every page is the one moto answers without it, and together they are exactly that
    customer's bookings, newest first, each once, with the index's projection only: the
    patch must not take the index's hash key for a partition of the table."""
    hooks.install({})
    bookings = TABLES_BY_NAME["bookings"]
    client = boto3.client("dynamodb")
    client.create_table(TableName="bookings", BillingMode="PAY_PER_REQUEST", KeySchema=bookings.key_schema(),
                        AttributeDefinitions=bookings.attribute_definitions(),
                        GlobalSecondaryIndexes=bookings.index_definitions())
    made: dict[str, list[tuple[str, str]]] = {"ada": [], "alan": []}
    for number in (7, 3, 19, 0, 12, 5, *range(20)):  # out of order, some written twice
        customer = "ada" if number % 3 else "alan"
        created = f"2026-12-02T07:{number // 2:02d}:00.{number % 2:06d}Z" if number != 14 \
            else "2026-12-02T07:06:00.000001Z"  # ada's, the same microsecond as booking 13
        booking_id = f"{number * 7919 % 100:02d}{number:02d}"  # ids in no order of time
        client.put_item(TableName="bookings", Item={
            "booking_id": {"S": booking_id}, "customer_id": {"S": customer}, "created_at": {"S": created},
            "status": {"S": "CONFIRMED"}, "passenger": {"M": {"first_name": {"S": "Ada"}}},
        })
        if (created, booking_id) not in made[customer]:
            made[customer].append((created, booking_id))
    assert len(made["ada"]) == 13 and len(made["alan"]) == 7
    assert len({created for created, _ in made["ada"]}) == 12  # bookings 13 and 14: one created_at
    for customer, theirs in made.items():
        for limit in (1, 4, 50):
            with hooks.unpatched("query", "all_items"):
                expected = _listing_pages(client, customer, limit)
            pages = _listing_pages(client, customer, limit)
            assert pages == expected, (customer, limit)
            listed = [item for page in pages for item in page]
            assert sorted(((item["created_at"], item["booking_id"]) for item in listed), reverse=True) == \
                sorted(theirs, reverse=True)
            assert [item["created_at"] for item in listed] == sorted((item["created_at"] for item in listed),
                                                                     reverse=True)
            assert all(set(item) == {"booking_id", "customer_id", "created_at", "status"} for item in listed)
            assert all(len(page) <= limit for page in pages) and len(pages) >= -(-len(theirs) // limit)


def _dynamodb_backend() -> Any:
    from moto.dynamodb.models import dynamodb_backends

    return dynamodb_backends["123456789012"]["us-east-1"]


# --- Update expressions and attribute values: the same answers as moto's -------------------
EVERY_KIND = {
    "pk": {"S": "item"}, "n": {"N": "7"}, "flag": {"BOOL": False}, "nothing": {"NULL": True},
    "blob": {"B": b"\x00\x01binary"}, "blobs": {"BS": [b"one", b"two"]}, "names": {"SS": ["a", "b"]},
    "numbers": {"NS": ["1", "2.5"]}, "empty_map": {"M": {}}, "empty_list": {"L": []},
    "nested": {"M": {"list": {"L": [{"S": "x"}, {"N": "1"}, {"M": {"deep": {"BOOL": True}}}, {"B": b"in"}]},
                     "text": {"S": "t"}}},
    "items": {"L": [{"N": "0"}, {"N": "1"}, {"N": "2"}, {"N": "3"}, {"N": "4"}]},
}
UPDATES: list[dict[str, Any]] = [
    {"UpdateExpression": "SET a = :a, b = if_not_exists(b, :b), c = list_append(if_not_exists(c, :empty), :c) "
                         "REMOVE flag ADD n :one",
     "ExpressionAttributeValues": {":a": {"S": "A"}, ":b": {"M": {"x": {"N": "1"}}}, ":empty": {"L": []},
                                   ":c": {"L": [{"S": "c"}]}, ":one": {"N": "1"}}},
    {"UpdateExpression": "REMOVE #i[3], #i[0], #i[1]", "ExpressionAttributeNames": {"#i": "items"}},
    {"UpdateExpression": "SET #n.#t = :t, numbers = :numbers",
     "ExpressionAttributeNames": {"#n": "nested", "#t": "text"},
     "ExpressionAttributeValues": {":t": {"S": "changed"}, ":numbers": {"NS": ["9"]}}},
    {"UpdateExpression": "SET a = :a SET b = :a", "ExpressionAttributeValues": {":a": {"S": "A"}}},  # two SETs
    {"UpdateExpression": "SET a = :a, a = :b", "ExpressionAttributeValues": {":a": {"S": "A"}, ":b": {"S": "B"}}},
    {"UpdateExpression": "SET = :a", "ExpressionAttributeValues": {":a": {"S": "A"}}},  # malformed
    {"UpdateExpression": "SET pk = :a", "ExpressionAttributeValues": {":a": {"S": "A"}}},  # the key
    # One text, checked with names that pass, then with names that make two paths one.
    {"UpdateExpression": "SET #x = :a, #y = :b", "ExpressionAttributeNames": {"#x": "x", "#y": "y"},
     "ExpressionAttributeValues": {":a": {"S": "A"}, ":b": {"S": "B"}}},
    {"UpdateExpression": "SET #x = :a, #y = :b", "ExpressionAttributeNames": {"#x": "x", "#y": "x"},
     "ExpressionAttributeValues": {":a": {"S": "A"}, ":b": {"S": "B"}}},
    {"UpdateExpression": "SET gone.deeper = :a", "ExpressionAttributeValues": {":a": {"S": "A"}}},
    {"UpdateExpression": "SET a = :a", "ConditionExpression": "n = :zero",
     "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
     "ExpressionAttributeValues": {":a": {"S": "A"}, ":zero": {"N": "0"}}},
]


def _answer(call: Callable[..., Any], **request: Any) -> Any:
    try:
        answer = call(**request)
    except Exception as error:  # the error is the answer being compared
        response = getattr(error, "response", {})
        return {"error": response.get("Error"), "reasons": response.get("CancellationReasons"),
                "item": response.get("Item")}
    answer.pop("ResponseMetadata", None)
    return answer


def _requests_of_every_kind(client: Any) -> list[Any]:
    """The same script each time: writes of every value type, each update twice (a cached
    tree the second time), reads of every kind, a transaction that fails and one that
    commits."""
    client.create_table(TableName="kinds", BillingMode="PAY_PER_REQUEST",
                        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
    answers = [_answer(client.put_item, TableName="kinds", Item=EVERY_KIND),
               _answer(client.put_item, TableName="kinds", Item={**EVERY_KIND, "pk": {"S": "other"}})]
    for update in UPDATES:
        for _ in range(2):
            answers.append(_answer(client.update_item, TableName="kinds", Key={"pk": {"S": "item"}},
                                   ReturnValues="ALL_NEW", **update))
    key = {"pk": {"S": "other"}}
    transaction = [{"Update": {"TableName": "kinds", "Key": key, "UpdateExpression": "SET a = :a ADD n :one",
                               "ExpressionAttributeValues": {":a": {"S": "T"}, ":one": {"N": "1"}}}},
                   {"ConditionCheck": {"TableName": "kinds", "Key": {"pk": {"S": "item"}},
                                       "ConditionExpression": "n = :n",
                                       "ExpressionAttributeValues": {":n": {"N": "-1"}},
                                       "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}}]
    answers.append(_answer(client.transact_write_items, TransactItems=transaction))
    answers.append(_answer(client.transact_write_items, TransactItems=transaction[:1]))
    answers += [
        _answer(client.get_item, TableName="kinds", Key={"pk": {"S": "item"}}),
        _answer(client.get_item, TableName="kinds", Key=key, ProjectionExpression="nested.#t, #b",
                ExpressionAttributeNames={"#t": "text", "#b": "blob"}),
        _answer(client.query, TableName="kinds", KeyConditionExpression="pk = :p",
                ExpressionAttributeValues={":p": {"S": "other"}}),
        _answer(client.batch_get_item, RequestItems={"kinds": {"Keys": [{"pk": {"S": "item"}}, key]}}),
        _answer(client.scan, TableName="kinds"),
    ]
    return answers


def test_updates_and_reads_answer_exactly_as_moto_does(bare_moto: None) -> None:
    """GIVEN the same requests (values of every DynamoDB type, binaries included; updates
    that succeed, fail validation, fail to parse and fail their condition, each sent twice;
    a failed and a committed transaction; every kind of read) WHEN run on moto's own code
    and with the patches THEN every answer and every error is identical, and the shared
    parsed trees are exactly as parsed."""
    import pickle

    hooks.install({})
    client = boto3.client("dynamodb")
    patches = ("update_parse", "traverse", "node_types", "method_names", "attribute_values_out",
               "attribute_values_in", "dynamo_to_dict", "unsigned", "update_checks")
    with hooks.unpatched(*patches):
        expected = _requests_of_every_kind(client)
    client.delete_table(TableName="kinds")
    answered = _requests_of_every_kind(client)
    assert answered == expected
    errors = [answer["error"]["Code"] for answer in answered if isinstance(answer, dict) and answer.get("error")]
    assert errors.count("ValidationException") == 12 and errors.count("ConditionalCheckFailedException") == 2
    assert errors.count("TransactionCanceledException") == 1
    kept = list(hooks.update_expressions._by_text.values())
    assert len(kept) >= 6
    assert all(pickle.dumps(tree, protocol=pickle.HIGHEST_PROTOCOL) == blob for tree, blob in kept)
    assert len(hooks.update_expressions.checked) >= 4  # each text that passed its checks, once


def test_the_first_validator_passes_read_only_the_text_the_names_and_the_keys() -> None:
    from moto.dynamodb.parsing import validators

    source = inspect.getsource(validators.UpdateExpressionValidator.get_ast_processors)
    compact = " ".join(source.split())
    built = ["ActionCountValidator()", "OverlappingPathsValidator(self.expression_attribute_names)",
             "UpdateHashRangeKeyValidator( self.table.table_key_attrs, self.expression_attribute_names or {} )",
             "ExpressionAttributeValueProcessor("]
    assert [compact.index(text) for text in built] == sorted(compact.index(text) for text in built)
    for checker in hooks._TEXT_CHECKS:  # they raise or hand the node back unchanged
        assert "return node" in inspect.getsource(checker) and "item" not in inspect.getsource(checker)
    assert "for processor in self.processors:\n            n = processor.traverse(n)" in \
        inspect.getsource(validators.Validator.validate)
    assert "__init__" not in validators.UpdateExpressionValidator.__dict__ or \
        hooks._replaced.get("update_checks")


def test_the_parse_cache_is_bounded_and_keeps_nothing_that_failed(bare_moto: None) -> None:
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser  # type: ignore[attr-defined]

    hooks.install({})
    cache = hooks.update_expressions
    cache.clear()
    size, cache.size = cache.size, 3
    try:
        trees = [UpdateExpressionParser.make(f"SET a{index} = :v") for index in range(5)]
        assert UpdateExpressionParser.make("SET a4 = :v") is trees[4]
        assert list(cache._by_text) == ["SET a2 = :v", "SET a3 = :v", "SET a4 = :v"]
        assert len(cache._by_tree) == 3
        for _ in range(2):
            with pytest.raises(Exception, match=r"Invalid UpdateExpression|Syntax error"):
                UpdateExpressionParser.make("SET = :v")
        assert "SET = :v" not in cache._by_text
    finally:
        cache.size = size
        cache.clear()


def test_dispatch_lists_each_handler_class_once_with_the_same_names() -> None:
    from moto.core.utils import method_names_from_class

    hooks.install({})
    try:
        assert hooks._method_names_once(DynamoHandler) == method_names_from_class(DynamoHandler)
        assert hooks._method_names_once(DynamoHandler) is hooks._method_names_once(DynamoHandler)
    finally:
        hooks.uninstall()


# --- The program cache ----------------------------------------------------------------------
def _definition(kind: str) -> str:
    from deploy import asl

    text = asl.text(kind)
    return asl.substitute(text, {name: f"arn:aws:lambda:us-east-1:123456789012:function:{name}"
                                 for name in asl.placeholders(text)})


def _reachable_components(root: object) -> list[EvalComponent]:
    """Every EvalComponent the garbage collector can reach from ``root`` (classes aside):
    independent of how hooks walks a program."""
    seen, pending, found = set(), [root], []
    while pending:
        value = pending.pop()
        if id(value) in seen or isinstance(value, type):
            continue
        seen.add(id(value))
        if isinstance(value, EvalComponent):
            found.append(value)
        pending.extend(gc.get_referents(value))
    return found


def test_each_definition_is_parsed_once_and_shared_with_its_keys_assigned() -> None:
    """GIVEN a cache of two WHEN the booking definition is asked for three times THEN it is
    parsed once and every component of it already has its heap key; WHEN two more
    definitions push it out THEN it is parsed again (the cache is bounded)."""
    cache = hooks.ProgramCache(size=2)
    booking = _definition("booking")
    first = cache.program(booking)
    assert cache.program(booking) is first and cache.program(booking) is first
    assert cache.parses == 1
    components = _reachable_components(first)
    assert len(components) > 200
    assert all(component._EvalComponent__heap_key is not None for component in components)  # type: ignore[attr-defined]
    cache.program(_definition("cancellation"))
    cache.program(booking.replace('"TimeoutSeconds": 10', '"TimeoutSeconds": 9'))
    assert cache.parses == 3
    assert cache.program(booking) is not first and cache.parses == 4


def test_a_program_with_a_pass_result_is_parsed_per_execution() -> None:
    """A Pass state's Result is handed out by reference and may be changed by a later
    state: such a program is never shared."""
    cache = hooks.ProgramCache()
    definition = json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": {"a": 1}, "End": True}}})
    assert cache.program(definition) is not cache.program(definition)
    assert cache.parses == 2


# --- The engine's Lambda client and gate, on a tiny state machine ---------------------------
@pytest.fixture
def tiny_engine(bare_moto: None) -> Iterator[Callable[..., Any]]:
    """``start(limit, handler)``: one state machine of one Lambda task (dispatched in
    process to ``handler``), at most ``limit`` executions running; returns (sfn, arn)."""
    from local.embedded import _empty_zip

    def start(limit: int, handler: Callable[[dict[str, Any], Any], Any]) -> tuple[Any, str]:
        hooks.install({"work": handler}, max_running_executions=limit)
        role = boto3.client("iam").create_role(RoleName="r", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        function = boto3.client("lambda").create_function(
            FunctionName="work", Runtime="python3.11", Role=role, Handler="app.work",
            Code={"ZipFile": _empty_zip()})["FunctionArn"]
        definition = {"StartAt": "Work", "States": {"Work": {"Type": "Task", "Resource": function, "End": True}}}
        sfn = boto3.client("stepfunctions")
        arn = sfn.create_state_machine(name="tiny", definition=json.dumps(definition), roleArn=role)["stateMachineArn"]
        return sfn, arn

    yield start
    _join_all()


def _join_all(timeout: float = 30.0) -> None:
    from moto.stepfunctions.parser.utils import TMP_THREADS

    deadline = time.monotonic() + timeout
    while TMP_THREADS and time.monotonic() < deadline:
        thread = TMP_THREADS[-1]
        if thread.ident is None:  # appended by moto, about to be started
            time.sleep(0.001)
            continue
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
        TMP_THREADS.remove(thread)


def _wait(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_tasks_share_one_lambda_client(tiny_engine: Callable[..., Any]) -> None:
    """GIVEN twelve executions of a Lambda task WHEN they all succeed THEN moto's engine
    built one Lambda client for all of them, not one per task."""
    sfn, arn = tiny_engine(16, lambda event, context: {"ok": event["n"]})
    built: list[str] = []
    real = hooks._originals["boto_client_for"]

    def build_noted(**kwargs: Any) -> Any:
        built.append(kwargs["service"])
        return real(**kwargs)

    hooks._originals["boto_client_for"] = build_noted
    try:
        with hooks.unpatched("lambda_direct"):  # the SDK way, where the engine builds clients
            executions = [sfn.start_execution(stateMachineArn=arn, name=f"e{n}", input=json.dumps({"n": n}))[
                "executionArn"] for n in range(12)]
            _join_all()
    finally:
        hooks._originals["boto_client_for"] = real
    outputs = [json.loads(sfn.describe_execution(executionArn=execution)["output"]) for execution in executions]
    assert outputs == [{"ok": n} for n in range(12)]
    assert built == ["lambda"]


class Refused(Exception):
    """A handler's error: its class name is the error name Catch and Retry match."""


def _answer_by_input(event: Any, context: Any) -> Any:
    kind = event.get("kind")
    if kind == "refuse":
        raise Refused("no seats")
    if kind == "text":
        return "plain text"
    if kind == "nothing":
        return None
    return {"echo": event, "list": [1, "two", {"three": 3.5}]}


def _runs(sfn: Any, arn: str, inputs: list[Any], prefix: str) -> list[Any]:
    executions = [sfn.start_execution(stateMachineArn=arn, name=f"{prefix}{n}", input=json.dumps(value))["executionArn"]
                  for n, value in enumerate(inputs)]
    _join_all()
    runs = []
    for execution in executions:
        described = sfn.describe_execution(executionArn=execution)
        events = sfn.get_execution_history(executionArn=execution)["events"]
        runs.append({
            "status": described["status"], "output": described.get("output"), "error": described.get("error"),
            "cause": described.get("cause"),
            "events": [(event["type"], {key: value for key, value in event.items()
                                        if key.endswith("EventDetails")}) for event in events],
        })
    return runs


def test_tasks_invoke_the_backend_and_the_engine_sees_what_the_sdk_way_gives(
        tiny_engine: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """GIVEN a task whose function answers a map, a string, nothing, or raises, and a task
    of a function moto does not know WHEN run through moto's backend and the SDK way THEN
    every execution's status, output, error and history (with each event's details) are
    the same, and the direct way made no Lambda request."""
    sfn, arn = tiny_engine(4, _answer_by_input)
    inputs = [{"kind": "map", "n": 1}, {"kind": "text"}, {"kind": "nothing"}, {"kind": "refuse"}]
    with hooks.unpatched("lambda_direct"):
        expected = _runs(sfn, arn, inputs, "sdk")
    from moto.awslambda.responses import LambdaResponse

    requests: list[str] = []
    answer = LambdaResponse.invoke

    def noted(self: Any) -> Any:
        requests.append(self.path)
        return answer(self)

    monkeypatch.setattr(LambdaResponse, "invoke", noted)
    assert _runs(sfn, arn, inputs, "direct") == expected
    assert requests == []
    assert [run["status"] for run in expected] == ["SUCCEEDED"] * 3 + ["FAILED"]
    assert expected[3]["error"] == "Refused" and json.loads(expected[0]["output"])["echo"] == inputs[0]
    missing = {"StartAt": "Work", "States": {"Work": {"Type": "Task", "End": True,
               "Resource": arn.replace(":stateMachine:tiny", ":function:gone").replace(":states:", ":lambda:")}}}
    role = boto3.client("iam").get_role(RoleName="r")["Role"]["Arn"]
    gone = sfn.create_state_machine(name="gone", definition=json.dumps(missing), roleArn=role)["stateMachineArn"]
    with hooks.unpatched("lambda_direct"):
        expected_gone = _runs(sfn, gone, [{}], "sdk-gone")
    assert _runs(sfn, gone, [{}], "direct-gone") == expected_gone
    assert expected_gone[0]["status"] == "FAILED" and len(requests) == 2  # unknown: the SDK way, both times


def test_a_task_invokes_as_lambdas_own_answer_does() -> None:
    """What the direct invoke mirrors: the engine's SDK call and the fields it keeps, and
    moto's Lambda answer to Invoke."""
    from moto.awslambda.models import LambdaBackend
    from moto.awslambda.responses import LambdaResponse
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils

    engine = inspect.getsource(lambda_eval_utils._invoke_lambda_function)
    assert "invocation_response = lambda_client.invoke(**parameters)" in engine
    assert 'invocation_response["Payload"] = payload_json' in engine and "_from_payload(payload)" in engine
    assert "typed_dict=InvocationResponse, obj=invocation_response" in inspect.getsource(
        lambda_eval_utils.execute_lambda_function_integration)
    answer = inspect.getsource(LambdaResponse.invoke)
    assert "self.backend.invoke( function_name, qualifier, self.body, self.headers, response_headers )" in \
        " ".join(answer.split())
    assert "sys.getsizeof(payload) > 6000000" in answer and '"x-amz-log-result" in response_headers' in answer
    assert "payload = fn.invoke(body, headers, response_headers)" in inspect.getsource(LambdaBackend.invoke)


def test_executions_beyond_the_limit_wait_running_and_start_in_order(tiny_engine: Callable[..., Any]) -> None:
    """GIVEN at most 2 executions at once and tasks that block until released WHEN 5 start
    THEN all 5 are RUNNING, only 2 have entered a state, and as each ends the longest
    waiting one starts: all 5 succeed, in start order; WHEN a queued one is stopped THEN
    it ends ABORTED at once without running its task."""
    release = {n: threading.Event() for n in range(6)}
    ran: list[int] = []

    def work(event: dict[str, Any], context: Any) -> dict[str, Any]:
        ran.append(event["n"])
        assert release[event["n"]].wait(timeout=30)
        return {"n": event["n"]}

    sfn, arn = tiny_engine(2, work)
    executions = [sfn.start_execution(stateMachineArn=arn, name=f"e{n}", input=json.dumps({"n": n}))["executionArn"]
                  for n in range(6)]
    _wait(lambda: len(ran) == 2)
    time.sleep(0.2)  # give a wrongly admitted third the time to show up
    assert sorted(ran) == [0, 1]
    assert [sfn.describe_execution(executionArn=arn)["status"] for arn in executions] == ["RUNNING"] * 6
    assert [bool(sfn.get_execution_history(executionArn=arn)["events"]) for arn in executions] == \
        [True, True, False, False, False, False]
    assert hooks.gate.counts() == (2, 4)

    sfn.stop_execution(executionArn=executions[4], error="Stopped", cause="by the test")
    stopped = sfn.describe_execution(executionArn=executions[4])
    assert stopped["status"] == "ABORTED"
    assert [event["type"] for event in sfn.get_execution_history(executionArn=executions[4])["events"]] == \
        ["ExecutionStarted", "ExecutionAborted"]
    assert hooks.gate.counts() == (2, 3)

    def succeeded(n: int) -> bool:
        return bool(sfn.describe_execution(executionArn=executions[n])["status"] == "SUCCEEDED")

    for n, admitted_next in ((1, 2), (0, 3), (2, 5), (3, None), (5, None)):
        release[n].set()
        _wait(functools.partial(succeeded, n))
        if admitted_next is not None:  # the longest waiting one, not any
            _wait(functools.partial(operator.contains, ran, admitted_next))
            assert ran[-1] == admitted_next
    assert len(ran) == 5
    assert hooks.gate.counts() == (0, 0)


def test_chalice_local_works_on_a_few_requests_at_once() -> None:
    """GIVEN a gateway whose requests take a while, bounded to 2 WHEN 8 arrive together
    THEN at most 2 are inside at any moment and all 8 are answered; bounding again
    changes nothing."""
    from local.embedded import bound_concurrent_requests

    inside, most, lock = [0], [0], threading.Lock()

    class SlowGateway:
        def handle_request(self, method: str, path: str, headers: dict[str, str], body: bytes | None) -> str:
            with lock:
                inside[0] += 1
                most[0] = max(most[0], inside[0])
            time.sleep(0.05)
            with lock:
                inside[0] -= 1
            return path

    bound_concurrent_requests(2, gateway=SlowGateway)
    bound_concurrent_requests(5, gateway=SlowGateway)
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda n: SlowGateway().handle_request("GET", f"/{n}", {}, None), range(8)))
    assert answers == [f"/{n}" for n in range(8)]
    assert most[0] == 2


def test_the_gate_admits_first_come_first_served() -> None:
    gate = hooks.ExecutionGate(limit=1)
    first, second, third = gate.enter(), gate.enter(), gate.enter()
    assert (first.admitted, second.admitted, third.admitted) == (True, False, False)
    assert gate.withdraw(second) and not gate.withdraw(first)
    gate.leave()
    assert third.admitted and third.event.is_set() and not second.admitted
    gate.set_limit(3)
    fourth = gate.enter()
    assert fourth.admitted and gate.counts() == (2, 0)


def test_moto_validates_a_definition_by_parsing_it_where_the_hook_takes_over() -> None:
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    with hooks.unpatched("validate"):
        validate = inspect.getsource(StepFunctionsParserBackend._validate_definition)
    assert "AmazonStateLanguageParser.parse(definition)" in validate
    assert "raise InvalidDefinition(" in validate
    assert "StepFunctionsParserBackend._validate_definition(definition=definition)" in \
        inspect.getsource(StepFunctionsParserBackend.create_state_machine)
    assert "self._validate_definition(definition=definition)" in \
        inspect.getsource(StepFunctionsParserBackend.update_state_machine)


ROLE = "arn:aws:iam::123456789012:role/r"  # the role tiny_engine creates


@pytest.mark.parametrize("definition", [
    "{not json", json.dumps({"StartAt": "Nowhere", "States": {}}),
    json.dumps({"StartAt": "A", "States": {"A": {"Type": "Nonsense", "End": True}}}),
])
def test_an_invalid_definition_is_refused_as_moto_refuses_it(tiny_engine: Callable[..., Any], definition: str) -> None:
    """GIVEN a definition that does not parse WHEN a state machine is created or updated
    with it THEN the answer is moto's own InvalidDefinition, word for word, and nothing of
    it is kept."""
    sfn, arn = tiny_engine(4, lambda event, context: event)
    parses = hooks.programs.parses

    def refusals() -> list[tuple[str, str]]:
        answers = []
        for call in (lambda: sfn.create_state_machine(name="bad", definition=definition, roleArn=ROLE),
                     lambda: sfn.update_state_machine(stateMachineArn=arn, definition=definition)):
            with pytest.raises(sfn.exceptions.ClientError) as refused:
                call()
            answers.append((refused.value.response["Error"]["Code"], refused.value.response["Error"]["Message"]))
        return answers

    with hooks.unpatched("validate"):
        expected = refusals()
    assert refusals() == expected and all(message for _, message in expected)
    assert definition not in hooks.programs._programs and hooks.programs.parses == parses


def test_a_definition_validated_once_is_the_program_its_executions_share(tiny_engine: Callable[..., Any]) -> None:
    """GIVEN the parse caches emptied WHEN a state machine is created and run three
    times THEN its definition was parsed once, by the validation, and each execution
    succeeded on that program; a second stack (hooks uninstalled, installed) parses nothing."""
    hooks.clear_caches()
    parses = hooks.programs.parses
    sfn, arn = tiny_engine(4, lambda event, context: {"ok": event["n"]})
    assert hooks.programs.parses == parses + 1
    for n in range(3):
        sfn.start_execution(stateMachineArn=arn, name=f"e{n}", input=json.dumps({"n": n}))
    _join_all()
    statuses = [run["status"] for run in sfn.list_executions(stateMachineArn=arn)["executions"]]
    assert statuses == ["SUCCEEDED"] * 3 and hooks.programs.parses == parses + 1
    definition = sfn.describe_state_machine(stateMachineArn=arn)["definition"]
    hooks.uninstall()
    hooks.install({})
    assert definition in hooks.programs._programs
    sfn.create_state_machine(name="again", definition=definition, roleArn=ROLE)
    assert hooks.programs.parses == parses + 1


def test_a_stack_keeps_the_clients_its_moto_answered_and_forgets_any_other() -> None:
    """GIVEN a stack that built the app's clients WHEN it stops and the next one starts
    THEN they are the same clients (nothing rebuilt), and still answered by the new
    stack's moto; a client built between two stacks (no moto) is not kept."""
    import app as app_module
    from chalicelib import aws, db, saga
    from local.embedded import EmbeddedAws

    first = EmbeddedAws(app_module.app).start()
    try:
        built = (db.client(), saga.client())
    finally:
        first.stop()
    second = EmbeddedAws(app_module.app).start()
    try:
        assert (db.client(), saga.client()) == built
        assert set(db.client().list_tables()["TableNames"]) >= {os.environ[table.env_var] for table in TABLES}
    finally:
        second.stop()
    aws.reset_all(keep=(built[0],))  # as if saga's client was built between two stacks
    between = saga.client()
    third = EmbeddedAws(app_module.app).start()
    try:
        assert db.client() is built[0] and saga.client() is not between
    finally:
        third.stop()


def test_every_user_pool_signs_with_motos_one_key_imported_once(bare_moto: None) -> None:
    """GIVEN moto's pools, each importing moto's fixed private key WHEN two pools are
    created with the hook and one without THEN all three hold the same key (as JWKs,
    private parts included), the hooked two the very same object; moto still imports
    it exactly so."""
    from moto.cognitoidp import models

    source = inspect.getsource(models.CognitoIdpUserPool.__init__)
    assert 'jwks_file = load_resource("cognitoidp/resources/jwks-private.json")' in source
    assert "self.json_web_key = jwk.RSAKey.import_key(jwks_file)" in source
    assert inspect.getsource(models).count("jwk.") == 1
    hooks.install({})
    cognito = boto3.client("cognito-idp")

    def key_of_a_new_pool(name: str) -> Any:
        pool_id = cognito.create_user_pool(PoolName=name)["UserPool"]["Id"]
        return models.cognitoidp_backends["123456789012"]["us-east-1"].user_pools[pool_id].json_web_key

    first, second = key_of_a_new_pool("a"), key_of_a_new_pool("b")
    with hooks.unpatched("signing_key"):
        own = key_of_a_new_pool("c")
    assert first is second and own is not first
    assert first.as_dict(private=True) == own.as_dict(private=True)
