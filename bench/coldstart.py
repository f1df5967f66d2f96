"""Cold start: import time of the Lambda handler module (app.py, EMBEDDED_AWS unset)
against `import boto3`, median of several fresh interpreters (`python -X importtime`),
and the size of the deployment package.

    python -m bench.coldstart
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from bench.common import CHALICE, PROJECT_DIR, clean_env, median

RUNS = 7
_IMPORT_LINE = re.compile(r"^import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)")


def import_profile(statement: str) -> tuple[int, dict[str, int]]:
    """Total import time (µs) of one fresh interpreter, and the self time of the modules
    it imported summed by top-level package (where the time goes)."""
    env = clean_env()
    env.pop("EMBEDDED_AWS", None)
    env["PYTHONDONTWRITEBYTECODE"] = "0"
    completed = subprocess.run([sys.executable, "-X", "importtime", "-c", statement], cwd=PROJECT_DIR, env=env,
                               capture_output=True, text=True, timeout=120, check=True)
    total = 0
    packages: dict[str, int] = {}
    for line in completed.stderr.splitlines():
        match = _IMPORT_LINE.match(line)
        if not match:
            continue
        own, cumulative = int(match.group(1)), int(match.group(2))
        indent, name = len(match.group(3)), match.group(4)
        if indent == 1:  # a top-level import of the statement's interpreter
            total += cumulative
        top = name.split(".")[0]
        packages[top] = packages.get(top, 0) + own
    return total, packages


def import_times(runs: int = RUNS) -> dict[str, Any]:
    import_profile("import app")  # warm the bytecode cache (.pyc), as a deployed package ships it
    results: dict[str, Any] = {}
    for label, statement in (("import app", "import app"), ("import boto3", "import boto3")):
        totals = []
        packages: dict[str, list[int]] = {}
        for _ in range(runs):
            total, by_package = import_profile(statement)
            totals.append(total)
            for name, value in by_package.items():
                packages.setdefault(name, []).append(value)
        heaviest = sorted(((name, median(values) / 1000) for name, values in packages.items()),
                          key=lambda item: item[1], reverse=True)[:8]
        results[label] = {"median_ms": round(median(totals) / 1000, 1), "runs_ms": [round(t / 1000, 1) for t in totals],
                          "heaviest_packages_self_ms": [(name, round(ms, 1)) for name, ms in heaviest]}
    results["ratio"] = round(results["import app"]["median_ms"] / results["import boto3"]["median_ms"], 2)
    return results


def deployment_zip(stage: str = "dev") -> dict[str, Any]:
    """build/<stage>/deployment.zip; built with `chalice package` into a temporary
    directory when it does not exist (nothing under build/ is overwritten)."""
    path = PROJECT_DIR / "build" / stage / "deployment.zip"
    how = f"existing {path.relative_to(PROJECT_DIR)}"
    if not path.exists():
        target = Path(tempfile.mkdtemp(prefix="bench-package-"))
        env = {**clean_env(), "AWS_DEFAULT_REGION": "us-east-1", "EMBEDDED_AWS": "false"}
        subprocess.run([str(CHALICE), "package", "--stage", stage, str(target / stage)], cwd=PROJECT_DIR, env=env,
                       capture_output=True, text=True, timeout=600, check=True)
        path = target / stage / "deployment.zip"
        how = f"chalice package --stage {stage} (into {target})"
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
    by_top: dict[str, int] = {}
    for info in infos:
        top = info.filename.split("/", 1)[0]
        by_top[top] = by_top.get(top, 0) + info.compress_size
    largest = sorted(by_top.items(), key=lambda item: item[1], reverse=True)[:6]
    return {"path": how, "bytes": os.path.getsize(path), "mib": round(os.path.getsize(path) / 2**20, 2),
            "mb": round(os.path.getsize(path) / 1e6, 2), "files": len(infos),
            "largest_compressed_kib": [(name, round(size / 1024, 1)) for name, size in largest]}


def xray_sdk_size() -> dict[str, Any]:
    """What aws-xray-sdk (and wrapt, its dependency) would add to the package, zipped."""
    import importlib.util

    added: dict[str, Any] = {}
    for package in ("aws_xray_sdk", "wrapt"):
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            added[package] = None
            continue
        root = Path(next(iter(spec.submodule_search_locations)))
        with tempfile.TemporaryFile() as handle:
            with zipfile.ZipFile(handle, "w", zipfile.ZIP_DEFLATED) as archive:
                for file in root.rglob("*"):
                    if file.is_file() and "__pycache__" not in file.parts:
                        archive.write(file, file.relative_to(root.parent))
            handle.seek(0, os.SEEK_END)
            added[package] = round(handle.tell() / 1024, 1)
    return {"zipped_kib": added}


def measure() -> dict[str, Any]:
    return {"imports": import_times(), "zip": deployment_zip(), "xray_sdk": xray_sdk_size()}


if __name__ == "__main__":
    print(json.dumps(measure(), indent=2))
