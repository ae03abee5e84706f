"""Request bodies checked against gateway/openapi.yaml, in one place (ADR 0008).

One validator per operation with a JSON request body, compiled once at start-up with
jsonschema-rs from the operation's `requestBody` schema (JSON Schema 2020-12, OpenAPI
3.1's dialect; `$ref`s resolve inside the document). `format` is an annotation here, not
a check: handlers parse timestamps themselves and the services judge ids. An invalid
body is a 400 `invalid_argument` naming the field by its dotted path (list positions
and map keys left out: `thresholds.color`, `custom`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import quote, unquote

import jsonschema_rs

from .errors import ApiError

SPEC_URI = "urn:switchboard:gateway-openapi"
JSON = "application/json"
METHODS = ("get", "put", "post", "delete", "patch")
TYPE_NAMES = {
    "string": "a string",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "array": "a list",
    "object": "an object",
    "null": "null",
}
# an unknown field first: it is usually why another check failed
_RANK = {"additionalProperties": 0, "unevaluatedProperties": 0, "required": 1}


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _pointer(*tokens: str) -> str:
    """A JSON pointer as a URI fragment (`{` and the like percent-encoded)."""
    return "#/" + "/".join(quote(_escape(t), safe="~$-_.!*'()") for t in tokens)


def _target(spec: dict[str, Any], node: dict[str, Any], pointer: str) -> tuple[dict[str, Any], str]:
    """A `requestBody` that is a `$ref` (to components/requestBodies): the node it names."""
    while "$ref" in node:
        pointer = str(node["$ref"])
        found: Any = spec
        for token in pointer[2:].split("/"):
            found = found[unquote(token).replace("~1", "/").replace("~0", "~")]
        node = found
    return node, pointer


class Bodies:
    """operationId → the compiled validator of its JSON request body."""

    def __init__(self, spec: dict[str, Any]) -> None:
        registry = jsonschema_rs.Registry([(SPEC_URI, spec)])
        self._schemas: dict[str, jsonschema_rs.Validator] = {}
        for path, item in spec["paths"].items():
            for method, op in item.items():
                if method not in METHODS or "requestBody" not in op:
                    continue
                body, at = _target(
                    spec, op["requestBody"], _pointer("paths", path, method, "requestBody")
                )
                if "schema" not in body.get("content", {}).get(JSON, {}):
                    continue
                ref = f"{SPEC_URI}{at}/content/{quote(_escape(JSON))}/schema"
                self._schemas[op["operationId"]] = jsonschema_rs.Draft202012Validator(
                    {"$ref": ref}, registry=registry, validate_formats=False
                )

    def __contains__(self, operation_id: str) -> bool:
        return operation_id in self._schemas

    def check(self, operation_id: str, body: Any) -> None:
        """Nothing when `body` fits the operation's schema (or it has none); else the
        400 of its most telling error."""
        validator = self._schemas.get(operation_id)
        if validator is None or validator.is_valid(body):
            return
        raise refusal(validator.iter_errors(body))


def _field(evaluation_path: Sequence[str | int], name: str = "") -> str:
    """The dotted names of the properties the schema went through: list positions and
    the keys of a map (`additionalProperties`) are left out, so that `thresholds.color`
    names the field in every entry and `custom` the map, whatever keys it holds."""
    parts: list[str] = []
    tokens = iter(evaluation_path)
    for token in tokens:
        if token == "properties":
            parts.append(str(next(tokens, "")))
    if name:
        parts.append(name)
    return ".".join(parts)


def _in_entry(evaluation_path: Sequence[str | int]) -> bool:
    """Whether the error is about an entry of a list or map rather than the field."""
    tail: list[str | int] = []
    for token in evaluation_path:
        tail = [] if token == "properties" else [*tail, token]
    return any(t in ("items", "prefixItems", "additionalProperties") for t in tail[1:])


def _types(types: Iterable[str]) -> str:
    ordered = sorted(types, key=lambda t: t == "null")  # "a string or null"
    return " or ".join(TYPE_NAMES.get(t, t) for t in ordered)


def _value(v: Any) -> str:
    return "null" if v is None else str(v)


def refusal(errors: Iterable[jsonschema_rs.ValidationError]) -> ApiError:
    """The 400 for a body's validation errors: the first of the most telling kind."""
    err = min(errors, key=lambda e: _RANK.get(e.kind.name, 2))
    kind = err.kind
    K = jsonschema_rs.ValidationErrorKind
    field = _field(err.evaluation_path)
    name = field or "the body"
    if field and _in_entry(err.evaluation_path):
        name = f"every entry of {field}"
    if isinstance(kind, K.AdditionalProperties | K.UnevaluatedProperties):
        unknown = sorted(kind.unexpected)[0]
        return _bad(f"unknown field {unknown!r}", _field(err.evaluation_path, unknown))
    if isinstance(kind, K.Required):
        field = _field(err.evaluation_path, kind.property)
        return _bad(f"{field} is required", field)
    if isinstance(kind, K.Type):
        message = f"{name} must be {_types(kind.types)}"
    elif isinstance(kind, K.Enum):
        message = f"{name} must be one of {', '.join(_value(o) for o in kind.options)}"
    elif isinstance(kind, K.Constant):
        message = f"{name} must be {_value(kind.expected_value)}"
    elif isinstance(kind, K.Minimum | K.ExclusiveMinimum):
        message = f"{name} must be at least {kind.limit}"
        if isinstance(kind, K.ExclusiveMinimum):
            message = f"{name} must be more than {kind.limit}"
    elif isinstance(kind, K.Maximum | K.ExclusiveMaximum):
        message = f"{name} must be at most {kind.limit}"
        if isinstance(kind, K.ExclusiveMaximum):
            message = f"{name} must be less than {kind.limit}"
    elif isinstance(kind, K.MinLength):
        message = (
            f"{name} must not be empty"
            if kind.limit == 1
            else f"{name} must be at least {kind.limit} characters"
        )
    elif isinstance(kind, K.MaxLength):
        message = f"{name} must be at most {kind.limit} characters"
    elif isinstance(kind, K.MinItems | K.MinProperties):
        message = (
            f"{name} must not be empty"
            if kind.limit == 1
            else f"{name} must have at least {kind.limit} entries"
        )
    elif isinstance(kind, K.MaxItems | K.MaxProperties):
        message = f"{name} has more than {kind.limit} entries"
    elif isinstance(kind, K.UniqueItems):
        message = f"{name} has the same entry twice"
    elif isinstance(kind, K.Pattern):
        message = f"{name} must match {kind.pattern}"
    elif isinstance(kind, K.PropertyNames):
        message = f"a key of {name} is not allowed: {kind.error.message}"
    else:
        message = f"{name}: {err.message}"
    return _bad(message, field or None)


def _bad(message: str, field: str | None) -> ApiError:
    return ApiError(400, "invalid_argument", message, field)
