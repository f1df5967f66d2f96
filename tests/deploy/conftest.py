"""Build what `make package` builds (merge template, `chalice package`, offline SAM
translation) once per session, into a temporary directory."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from deploy import resources, translate

PROJECT_DIR = Path(__file__).resolve().parents[2]
# `make validate-deploy` (CI) sets this: there, a missing tool fails instead of skipping.
REQUIRED = os.environ.get("REQUIRE_DEPLOY_REHEARSAL", "").lower() in {"1", "true", "yes"}


@dataclass(frozen=True)
class Package:
    stage: str
    directory: Path
    sam: dict[str, Any]  # chalice package's sam.json (merge template included)
    cloudformation: dict[str, Any]  # the same after the SAM transform

    @property
    def deployment_zip(self) -> Path:
        return self.directory / "deployment.zip"


def _chalice() -> str | None:
    beside_python = Path(sys.executable).parent / "chalice"
    return str(beside_python) if beside_python.exists() else shutil.which("chalice")


def _unavailable(reason: str) -> None:
    if REQUIRED:
        pytest.fail(reason)
    pytest.skip(reason)


def build_package(stage: str, directory: Path) -> Package:
    chalice = _chalice()
    if chalice is None:
        _unavailable("the chalice CLI is not installed: cannot run `chalice package` "
                     "(pip install -r requirements-dev.txt)")
    try:
        import samtranslator  # noqa: F401
    except ImportError:
        _unavailable("aws-sam-translator is not installed (pip install -r deploy/requirements.txt)")
    merge_template = directory / f"resources-{stage}.json"
    merge_template.write_text(json.dumps(resources.build(stage), indent=2))
    output = directory / stage
    env = {**os.environ, "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
           "EMBEDDED_AWS": "false"}
    completed = subprocess.run(
        [str(chalice), "package", "--stage", stage, "--merge-template", str(merge_template), str(output)],
        cwd=PROJECT_DIR, env=env, capture_output=True, text=True, timeout=300, check=False,
    )
    assert completed.returncode == 0, f"chalice package failed:\n{completed.stdout}\n{completed.stderr}"
    sam = json.loads((output / "sam.json").read_text())
    return Package(stage, output, sam, translate.translate(sam))


@pytest.fixture(scope="session")
def package_of(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Package]:
    """``package_of(stage)``: that stage's package, built on first use."""
    built: dict[str, Package] = {}

    def package(stage: str) -> Package:
        if stage not in built:
            built[stage] = build_package(stage, tmp_path_factory.mktemp("package"))
        return built[stage]

    return package


@pytest.fixture(scope="session")
def dev_package(package_of: Callable[[str], Package]) -> Package:
    return package_of("dev")
