"""The state machine definitions on disk and their ``${...}`` placeholders.

Each Task's Resource is ``${<LogicalId>Arn}``, where ``<LogicalId>`` is the name
Chalice gives the function's CloudFormation resource (``reserve_seats`` ->
``ReserveSeats``): deploy maps it with ``Fn::GetAtt``, the embedded backend with the
ARN of the function it created. Not used by the Lambda handlers.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from chalicelib.vocabulary import SagaKind

PROJECT_DIR = Path(__file__).resolve().parent.parent
DEFINITION_FILES: dict[str, Path] = {
    SagaKind.BOOKING: PROJECT_DIR / "statemachine.json",
    SagaKind.CANCELLATION: PROJECT_DIR / "cancellation.json",
}
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9]+)\}")


def text(name: str) -> str:
    return DEFINITION_FILES[name].read_text()


def load(name: str) -> dict[str, Any]:
    return json.loads(text(name))  # type: ignore[no-any-return]


def placeholders(definition_text: str) -> set[str]:
    return set(_PLACEHOLDER.findall(definition_text))


def logical_id(function_name: str) -> str:
    """Chalice's CloudFormation logical id of ``@app.lambda_function(name=...)``."""
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", function_name) if part)


def placeholder_for(function_name: str) -> str:
    return f"{logical_id(function_name)}Arn"


def substitute(definition_text: str, values: dict[str, str]) -> str:
    missing = placeholders(definition_text) - set(values)
    if missing:
        raise KeyError(f"no value for placeholder(s): {', '.join(sorted(missing))}")
    return _PLACEHOLDER.sub(lambda match: values[match.group(1)], definition_text)
