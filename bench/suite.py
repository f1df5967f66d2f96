"""How long CI takes: `bash .ci/run` (what CI runs: the venv from PyPI, the linters,
the deploy checks, every test layer) on a fresh clone of HEAD in a temporary directory,
timed; plus pytest's own summary line. The working tree is not touched.

    python -m bench.suite
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import PROJECT_DIR, clean_env

SUMMARY = re.compile(r"=+ (?P<summary>.*\d+ passed.*) in (?P<seconds>[\d.]+)s")


def measure() -> dict[str, Any]:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT_DIR, check=True,
                            capture_output=True, text=True).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="bench-suite-") as scratch:
        clone = Path(scratch) / "clone"
        subprocess.run(["git", "clone", "-q", str(PROJECT_DIR), str(clone)], check=True)
        started = time.perf_counter()
        run = subprocess.run(["bash", ".ci/run"], cwd=clone, env=clean_env(), capture_output=True, text=True)
        seconds = time.perf_counter() - started
    found = SUMMARY.findall(run.stdout)
    summary, pytest_s = found[-1] if found else ("", "nan")  # the last summary: the whole suite's
    results = {"commit": commit, "exit_code": run.returncode, "seconds": round(seconds, 1),
               "pytest_seconds": float(pytest_s), "pytest_summary": summary}
    if run.returncode:  # what went wrong, for the report
        results["output_tail"] = (run.stdout + run.stderr)[-4000:]
    return results


if __name__ == "__main__":
    print(json.dumps(measure(), indent=2))
