"""Real answers held against the OpenAPI document (chalicelib/openapi.py).

Two checks per answer: the document's schema validates it (openapi-schema-validator:
types, enums, patterns, formats), and its keys are compared with the schema's
properties at every depth the schema describes: a key answered but not documented, or
documented as always there and missing, is a problem. Over all the answers of a test,
every documented property must have been answered at least once: a field the document
promises and no route ever sends is a problem too.
"""

from __future__ import annotations

from typing import Any

from openapi_schema_validator import OAS31Validator, oas31_format_checker

JSON = "application/json"


class ShapeCheck:
    """Collects the problems of the answers it is given; ask ``problems()`` at the end."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.found: list[str] = []
        self.documented: dict[str, set[str]] = {}  # schema pointer -> its properties
        self.answered: dict[str, set[str]] = {}  # schema pointer -> the properties answered
        self.answers: set[tuple[str, str, int]] = set()  # (method, path template, status)
        self.roots: dict[str, dict[str, Any]] = {}  # pointer -> the schema of each kind of answer
        self.bodies: list[tuple[str, Any]] = []  # (method path status, the JSON answered), every answer

    # --- the document -----------------------------------------------------------------
    def resolve(self, node: dict[str, Any], pointer: str) -> tuple[dict[str, Any], str]:
        """Follow ``$ref`` (local ones: the document has no other) to the node it names."""
        while "$ref" in node:
            target = node["$ref"]
            assert target.startswith("#/"), target
            node = self.document
            for part in target[2:].split("/"):
                node = node[part.replace("~1", "/").replace("~0", "~")]
            pointer = target
        return node, pointer

    def response_schema(self, method: str, path: str, status: int) -> tuple[dict[str, Any], str] | None:
        operation = self.document["paths"].get(path, {}).get(method.lower())
        where = f"{method} {path} {status}"
        if operation is None:
            self.found.append(f"{where}: the document has no such operation")
            return None
        response = operation["responses"].get(str(status))
        if response is None:
            self.found.append(f"{where}: answered, but the document does not list status {status}")
            return None
        response, pointer = self.resolve(response, f"#/paths/{path.replace('/', '~1')}/{method.lower()}"
                                                   f"/responses/{status}")
        media = response.get("content", {}).get(JSON)
        if media is None:
            self.found.append(f"{where}: answered JSON, but the document gives no JSON schema")
            return None
        return media["schema"], f"{pointer}/content/{JSON.replace('/', '~1')}/schema"

    # --- an answer ----------------------------------------------------------------------
    def answer(self, method: str, path: str, response: Any) -> None:
        """An answer of chalice.test.Client to ``method`` on the route ``path`` (its template)."""
        status = response.status_code
        self.answers.add((method, path, status))
        if response.json_body is not None:  # the page and its assets are not JSON; every answer of the API is
            self.bodies.append((f"{method} {path} {status}", response.json_body))
        found = self.response_schema(method, path, status)
        if found is None:
            return
        schema, pointer = found
        self.roots[pointer] = schema
        where = f"{method} {path} {status}"
        body = response.json_body
        self.validate(body, schema, where)
        self.walk(body, schema, pointer, f"{where}: $")
        self.headers(method, path, status, response.headers, where)

    def validate(self, body: Any, schema: dict[str, Any], where: str) -> None:
        # The schema as a root that carries the components, so its $refs resolve.
        root = {**schema, "components": self.document["components"]}
        validator = OAS31Validator(root, format_checker=oas31_format_checker)
        for error in sorted(validator.iter_errors(body), key=lambda error: list(error.absolute_path)):
            at = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in error.absolute_path)
            self.found.append(f"{where}: body{at}: {error.message[:200]}")

    def walk(self, value: Any, schema: dict[str, Any], pointer: str, at: str) -> None:
        schema, pointer = self.resolve(schema, pointer)
        if "anyOf" in schema:  # nullable(<$ref>): the one branch that is not null
            if value is None:
                return
            branches = [(index, branch) for index, branch in enumerate(schema["anyOf"])
                        if branch.get("type") != "null"]
            assert len(branches) == 1, f"{pointer}: only nullable anyOf is compared"
            index, branch = branches[0]
            self.walk(value, branch, f"{pointer}/anyOf/{index}", at)
        elif isinstance(value, dict):
            self._object(value, schema, pointer, at)
        elif isinstance(value, list):
            if "items" not in schema:
                self.found.append(f"{at}: a list, but {pointer} describes no items")
                return
            for index, item in enumerate(value):
                self.walk(item, schema["items"], f"{pointer}/items", f"{at}[{index}]")

    def _object(self, value: dict[str, Any], schema: dict[str, Any], pointer: str, at: str) -> None:
        extra = schema.get("additionalProperties")
        if "properties" in schema:
            documented = set(schema["properties"])
            self.documented[pointer] = documented
            answered = set(value)
            for name in sorted(answered - documented):
                self.found.append(f"{at}.{name}: answered but not documented ({pointer})")
            for name in sorted(set(schema.get("required", [])) - answered):
                self.found.append(f"{at}.{name}: documented as always answered, but missing ({pointer})")
            self.answered.setdefault(pointer, set()).update(answered & documented)
            for name in sorted(answered & documented):
                self.walk(value[name], schema["properties"][name], f"{pointer}/properties/{name}", f"{at}.{name}")
        elif isinstance(extra, dict):  # a map: every value has this schema
            for name, item in value.items():
                self.walk(item, extra, f"{pointer}/additionalProperties", f"{at}.{name}")
        elif extra is not True:  # free-form only when the document says so
            self.found.append(f"{at}: an object, but {pointer} lists no properties (nor additionalProperties: true)")

    def headers(self, method: str, path: str, status: int, headers: dict[str, str], where: str) -> None:
        response, _ = self.resolve(self.document["paths"][path][method.lower()]["responses"][str(status)], "")
        sent = {name.lower() for name in headers}
        for name, header in response.get("headers", {}).items():
            header, _ = self.resolve(header, "")
            if header.get("required") and name.lower() not in sent:
                self.found.append(f"{where}: header {name} is documented as always sent, but missing")

    # --- at the end ---------------------------------------------------------------------
    def never_answered(self) -> list[str]:
        """Documented properties of the schemas the answers reached that no answer had."""
        return [f"{pointer}/properties/{name}: documented, but no answer had it"
                for pointer, documented in sorted(self.documented.items())
                for name in sorted(documented - self.answered.get(pointer, set()))]

    def never_reached(self) -> list[str]:
        """Objects the answers' schemas describe (under a property that was answered) that
        no answer reached: an empty list, say, never shows the keys of its items."""
        missing: list[str] = []
        visited: set[str] = set()
        pending = list(self.roots.items())
        while pending:
            pointer, schema = pending.pop()
            schema, pointer = self.resolve(schema, pointer)
            if pointer in visited:
                continue
            visited.add(pointer)
            if "properties" in schema:
                if pointer not in self.documented:
                    missing.append(f"{pointer}: documented, but no answer reached it")
                    continue
                pending += [(f"{pointer}/properties/{name}", schema["properties"][name])
                            for name in sorted(self.answered.get(pointer, set()))]
            pending += [(f"{pointer}/anyOf/{index}", branch) for index, branch in enumerate(schema.get("anyOf", []))]
            if "items" in schema:
                pending.append((f"{pointer}/items", schema["items"]))
            if isinstance(schema.get("additionalProperties"), dict):
                pending.append((f"{pointer}/additionalProperties", schema["additionalProperties"]))
        return sorted(missing)

    def problems(self) -> list[str]:
        return [*self.found, *self.never_answered(), *self.never_reached()]

    def schemas_reached(self) -> set[str]:
        return {pointer.split("/")[3] for pointer in self.documented if pointer.startswith("#/components/schemas/")}
