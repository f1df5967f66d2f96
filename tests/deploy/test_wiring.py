"""Fast, pure checks that app.py, the two definitions and the deploy generator agree,
and that the Lambda package holds Lambda code only: no packaging, no moto."""

from __future__ import annotations

import ast
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

import app as app_module
from chalicelib.schema import TABLES, TABLES_BY_NAME
from deploy import asl, resources
from tests.deploy.conftest import PROJECT_DIR, REQUIRED

# The saga's steps; the operator's function is invoked by hand, not by a state machine.
NOT_IN_STATE_MACHINES = {"operator"}
FUNCTIONS = {function.name for function in app_module.app.pure_lambda_functions} - NOT_IN_STATE_MACHINES
ALL_FUNCTIONS = sorted(resources.app_function_names())  # and event sources (@app.schedule)
DEPLOYED_STAGES = sorted(resources.STAGES)
# Actions that take no resource ARN: the only ones allowed on Resource "*".
RESOURCELESS = {*resources.XRAY_STATES, *resources.LOG_DELIVERY}
# Chalice zips chalicelib/ whole: what runs only outside Lambda must stay out of it.
NOT_FOR_LAMBDA = ("local", "ops", "deploy", "tests", "bench", "moto")
# `make package STAGE=dev` builds it; `make test` runs validate-deploy, which does, first.
DEV_ZIP = PROJECT_DIR / "build" / "dev" / "deployment.zip"


def placeholders() -> dict[str, set[str]]:
    return {name: asl.placeholders(asl.text(name)) for name in asl.DEFINITION_FILES}


def test_every_lambda_function_has_a_place_in_a_state_machine() -> None:
    used = set().union(*placeholders().values())
    unused = sorted(name for name in FUNCTIONS if asl.placeholder_for(name) not in used)
    assert not unused, f"@app.lambda_function without a Task in statemachine.json/cancellation.json: {unused}"


def test_every_placeholder_names_a_lambda_function() -> None:
    known = {asl.placeholder_for(name) for name in FUNCTIONS}
    for name, found in placeholders().items():
        assert found <= known, f"{name}: no @app.lambda_function for {sorted(found - known)}"


def test_every_task_resource_is_a_placeholder() -> None:
    for name in asl.DEFINITION_FILES:
        for state_name, state in asl.load(name)["States"].items():
            if state["Type"] == "Task":
                assert asl.placeholders(state["Resource"]), f"{name}.{state_name}: Resource is not ${{XArn}}"


@pytest.mark.parametrize("stage", DEPLOYED_STAGES)
def test_every_placeholder_has_a_substitution(stage: str) -> None:
    template = resources.build(stage, ALL_FUNCTIONS)
    for name, (logical_id, _) in resources.STATE_MACHINES.items():
        properties = template["Resources"][logical_id]["Properties"]
        assert set(properties["DefinitionSubstitutions"]) == placeholders()[name]
        for placeholder, value in properties["DefinitionSubstitutions"].items():
            target = value["Fn::GetAtt"][0]
            assert f"{target}Arn" == placeholder
            assert target in {asl.logical_id(function) for function in FUNCTIONS}
        assert properties["Definition"] == asl.load(name)


def test_function_access_covers_exactly_the_functions() -> None:
    assert set(resources.FUNCTION_ACCESS) == {*ALL_FUNCTIONS, resources.API_HANDLER}
    assert set(resources.STATE_MACHINE_ACCESS) <= set(resources.FUNCTION_ACCESS)
    for access in resources.FUNCTION_ACCESS.values():
        assert set(access) <= set(TABLES_BY_NAME)


def _statements(template: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for resource in template["Resources"].values():
        properties = resource.get("Properties", {})
        documents: list[dict[str, Any]] = []  # a user pool's Policies are its password policy, not IAM's
        if resource.get("Type") == "AWS::IAM::Role":
            documents.extend(policy["PolicyDocument"] for policy in properties.get("Policies", []))
        if resource.get("Type") == "AWS::IAM::Policy":
            documents.append(properties["PolicyDocument"])
        found.extend(statement for document in documents for statement in document["Statement"])
    return found


@pytest.mark.parametrize("stage", DEPLOYED_STAGES)
def test_policies_are_least_privilege(stage: str) -> None:
    statements = _statements(resources.build(stage, ALL_FUNCTIONS))
    assert statements
    for statement in statements:
        actions = statement["Action"]
        assert all(action != "*" and not action.endswith(":*") for action in actions), statement
        if statement["Resource"] == "*":
            assert set(actions) <= RESOURCELESS, statement


@pytest.mark.parametrize("stage", DEPLOYED_STAGES)
def test_functions_get_roles_and_the_names_of_exactly_their_tables(stage: str) -> None:
    template = resources.build(stage, ALL_FUNCTIONS)
    for name, access in resources.FUNCTION_ACCESS.items():
        logical_id = resources.function_logical_id(name)
        properties = template["Resources"][logical_id]["Properties"]
        assert properties["Role"] == {"Fn::GetAtt": [f"{logical_id}Role", "Arn"]}
        variables = properties["Environment"]["Variables"]
        tables = {TABLES_BY_NAME[table].env_var: {"Ref": TABLES_BY_NAME[table].logical_id} for table in access}
        assert {key: value for key, value in variables.items() if key.endswith("_TABLE")} == tables


def test_tables_come_from_the_schema() -> None:
    template = resources.build("prod", ALL_FUNCTIONS)
    for table in TABLES:
        resource = template["Resources"][table.logical_id]
        assert resource["Properties"]["KeySchema"] == table.key_schema()
        assert resource["Properties"]["BillingMode"] == "PAY_PER_REQUEST"
        assert resource["Properties"]["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        assert ("TimeToLiveSpecification" in resource["Properties"]) == bool(table.ttl_attribute)
        assert template["Outputs"][table.logical_id]["Value"] == {"Ref": table.logical_id}


def test_chalice_stages_leave_roles_to_the_merge_template() -> None:
    stages = json.loads((PROJECT_DIR / ".chalice" / "config.json").read_text())["stages"]
    assert set(stages) == {"local", *DEPLOYED_STAGES}
    for stage in DEPLOYED_STAGES:
        assert stages[stage]["autogen_policy"] is False
        assert stages[stage]["manage_iam_role"] is False
        assert stages[stage]["environment_variables"]["STAGE"] == stage


def test_a_stage_can_choose_express_state_machines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(resources.STAGES, "dev", resources.StageSettings(state_machine_type="EXPRESS"))
    template = resources.build("dev", ALL_FUNCTIONS)
    for logical_id, _ in resources.STATE_MACHINES.values():
        assert template["Resources"][logical_id]["Properties"]["StateMachineType"] == "EXPRESS"


def _imported_top_levels(path: Path) -> set[str]:
    """The top-level package of every absolute import in the module, wherever it sits
    (a function-level import ships in the zip all the same)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_chalicelib_imports_nothing_that_stays_out_of_the_lambda_zip() -> None:
    modules = sorted((PROJECT_DIR / "chalicelib").rglob("*.py"))
    assert modules
    offenders = {
        str(module.relative_to(PROJECT_DIR)): sorted(_imported_top_levels(module) & set(NOT_FOR_LAMBDA))
        for module in modules
    }
    offenders = {module: names for module, names in offenders.items() if names}
    assert not offenders, f"chalicelib/ is packaged into the Lambda zip, these are not: {offenders}"


def test_the_lambda_zip_holds_app_and_chalicelib_and_no_local_tooling() -> None:
    if not DEV_ZIP.exists():
        reason = f"{DEV_ZIP.relative_to(PROJECT_DIR)} is missing: run make package STAGE=dev"
        if REQUIRED:
            pytest.fail(reason)
        pytest.skip(reason)
    with zipfile.ZipFile(DEV_ZIP) as archive:
        names = archive.namelist()
    assert "app.py" in names
    assert "chalicelib/__init__.py" in names
    unwanted = sorted(name for name in names
                      if name.split("/", 1)[0] in NOT_FOR_LAMBDA or name.startswith("chalicelib/local/"))
    assert not unwanted, (f"{DEV_ZIP.relative_to(PROJECT_DIR)} carries local tooling (stale? run make package "
                          f"STAGE=dev): {unwanted}")
