"""gateway/openapi.yaml describes the gateway as built: a well-formed OpenAPI 3.1 document
whose operations are exactly the routes `build_app` registers, and whose error codes cover
every code the gateway can answer with."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml

from gateway import app as gateway_app
from gateway import errors as gateway_errors

SPEC_PATH = Path(gateway_app.__file__).with_name("openapi.yaml")
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
STATUS_KEY = re.compile(r"^([1-5][0-9]{2}|[1-5]XX|default)$")


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    loaded = yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict), "the document must be a mapping"
    return loaded


def _operations(spec: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method.upper(), path): op
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if method in METHODS
    }


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def _resolve(spec: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), f"only local references are used: {ref}"
    node: Any = spec
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and part in node, f"unresolvable $ref {ref}"
        node = node[part]
    return node


def test_is_an_openapi_3_1_document(spec: dict[str, Any]) -> None:
    try:
        from openapi_spec_validator import validate  # type: ignore[import-not-found]
    except ImportError:
        validate = None
    if validate is not None:
        validate(spec)
    assert str(spec.get("openapi", "")).startswith("3.1."), spec.get("openapi")
    assert spec["info"]["title"] and spec["info"]["version"]
    assert isinstance(spec["paths"], dict) and spec["paths"]
    assert all(p.startswith("/") for p in spec["paths"])


def test_every_ref_resolves(spec: dict[str, Any]) -> None:
    refs = _refs(spec)
    assert refs
    for ref in refs:
        _resolve(spec, ref)


def test_every_operation_has_responses_and_declares_its_path_parameters(
    spec: dict[str, Any],
) -> None:
    schemes = set(spec["components"]["securitySchemes"])
    seen_ids: set[str] = set()
    for (method, path), op in _operations(spec).items():
        responses = op.get("responses")
        assert isinstance(responses, dict) and responses, f"{method} {path}: no responses"
        for status, resp in responses.items():
            assert STATUS_KEY.match(str(status)), f"{method} {path}: bad status {status!r}"
            assert "$ref" in resp or resp.get("description"), f"{method} {path} {status}"
        op_id = op.get("operationId")
        assert op_id and op_id not in seen_ids, f"{method} {path}: operationId {op_id!r}"
        seen_ids.add(op_id)
        params = [
            _resolve(spec, p["$ref"]) if "$ref" in p else p
            for p in spec["paths"][path].get("parameters", []) + op.get("parameters", [])
        ]
        declared = {p["name"] for p in params if p["in"] == "path"}
        assert declared == set(re.findall(r"{([^}]+)}", path)), f"{method} {path}"
        for requirement in op.get("security", spec.get("security", [])):
            assert set(requirement) <= schemes, f"{method} {path}: unknown scheme"


def test_operations_are_exactly_the_routes_the_gateway_registers(spec: dict[str, Any]) -> None:
    app = gateway_app.build_app(gateway_app.GatewaySettings())  # connects nothing until started
    routes = {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.method != "HEAD" and route.resource is not None
    }
    documented = set(_operations(spec))
    assert routes == documented, (
        f"registered but not documented: {sorted(routes - documented)}; "
        f"documented but not registered: {sorted(documented - routes)}"
    )


def test_error_schema_lists_every_code_the_gateway_emits(spec: dict[str, Any]) -> None:
    documented = set(
        spec["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["code"]["enum"]
    )
    emitted: set[str] = set()
    for code in grpc.StatusCode:
        err = grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), "details")
        emitted.add(gateway_errors.from_grpc(err).code)
    gateway_dir = SPEC_PATH.parent
    for source in gateway_dir.glob("*.py"):
        text = source.read_text(encoding="utf-8")
        emitted.update(re.findall(r'(?:ApiError|error_response)\(\s*\d{3},\s*"([a-z_]+)"', text))
        emitted.update(re.findall(r'\b[45]\d\d: "([a-z_]+)"', text))  # middleware's HTTP map
        emitted.update(re.findall(r'exc\.status, "([a-z_]+)"', text))  # its fallback
    assert {"upstream_error", "http_error", "internal", "too_large"} <= emitted
    assert emitted <= documented, f"not in the Error schema: {sorted(emitted - documented)}"
