"""The gateway's shape (issue 15): app.py only builds and wires, every route module stands
on its own (the toolkit — request.py, responses.py — and never app.py), the gateway's
modules import each other without a circle, and request bodies are checked against the
OpenAPI document in one place, with errors that name the field."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gateway.access import load_spec
from gateway.bodies import Bodies
from gateway.errors import ApiError
from gateway.request import _bad_text, _number

GATEWAY = Path(__file__).resolve().parents[2] / "gateway"
ROUTE_MODULES = sorted(p.stem for p in GATEWAY.glob("routes_*.py"))
SPEC = load_spec(GATEWAY / "openapi.yaml")
BODIES = Bodies(SPEC)


def _imports(module: str) -> set[str]:
    """The gateway modules `gateway/<module>.py` imports (relative or absolute)."""
    tree = ast.parse((GATEWAY / f"{module}.py").read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 and node.module:
                found.add(node.module.split(".")[0])
            elif node.level == 1:
                found.update(alias.name for alias in node.names)
            elif node.module and node.module.startswith("gateway."):
                found.add(node.module.split(".")[1])
            elif node.module == "gateway":
                found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("gateway."))
    return found


def test_there_are_route_modules() -> None:
    assert {"routes_tickets", "routes_ingestion", "routes_meta"} <= set(ROUTE_MODULES)


@pytest.mark.parametrize("module", ROUTE_MODULES)
def test_a_route_module_imports_on_its_own_without_the_app(module: str) -> None:
    """In a fresh interpreter: importing it works and does not load gateway.app."""
    code = (
        f"import sys, gateway.{module} as m\n"
        "assert callable(m.add_routes)\n"
        "print(sorted(n for n in sys.modules if n.startswith('gateway.')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, out.stderr
    loaded = eval(out.stdout)  # a printed list of module names
    assert f"gateway.{module}" in loaded
    assert "gateway.app" not in loaded
    assert not [m for m in loaded if m.startswith("gateway.routes_") and m != f"gateway.{module}"]


def test_gateway_modules_import_each_other_without_a_circle() -> None:
    graph = {p.stem: _imports(p.stem) for p in GATEWAY.glob("*.py") if p.stem != "__init__"}
    importers_of_app = sorted(m for m, deps in graph.items() if "app" in deps)
    assert importers_of_app == ["__main__"]
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        assert module not in path, f"import circle: {' → '.join((*path, module))}"
        if module in done:
            return
        for dep in graph.get(module, ()):
            visit(dep, (*path, module))
        done.add(module)

    for module in graph:
        visit(module, ())


def test_app_only_builds_and_wires() -> None:
    """No handler in app.py (nothing takes a request) and no route registered by hand:
    every route comes from a module's add_routes."""
    tree = ast.parse((GATEWAY / "app.py").read_text(encoding="utf-8"))
    functions = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    assert {f.name for f in functions} == {"middlewares", "build_app", "lifecycle", "main"}
    for f in functions:
        assert "request" not in [a.arg for a in f.args.args], f.name
    calls = {
        n.func.attr
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
    }
    assert not {c for c in calls if c.startswith("add_") and c != "add_routes"} - {
        "add_signal_handler"
    }


# -- request bodies against the document -------------------------------------------------


def _json_operations() -> list[str]:
    return [
        op["operationId"]
        for item in SPEC["paths"].values()
        for method, op in item.items()
        if isinstance(op, dict)
        and "application/json" in op.get("requestBody", {}).get("content", {})
    ]


def test_every_json_body_of_the_document_has_a_validator() -> None:
    ops = _json_operations()
    assert len(ops) > 40
    assert [op for op in ops if op not in BODIES] == []


def _refusal(operation_id: str, body: Any) -> tuple[str, str | None]:
    with pytest.raises(ApiError) as caught:
        BODIES.check(operation_id, body)
    err = caught.value
    assert (err.status, err.code) == (400, "invalid_argument")
    return err.message, err.field


@pytest.mark.parametrize(
    ("operation_id", "body", "message", "field"),
    [
        ("updateTicket", {"status": "closed"}, "status must be one of open, pending", "status"),
        ("updateTicket", {"colour": "red"}, "unknown field 'colour'", "colour"),
        ("updateTicket", {}, "the body must not be empty", None),
        (
            "updateTicket",
            {"add_labels": ["a", 3]},
            "every entry of add_labels must be a string",
            "add_labels",
        ),
        ("updateTicket", {"reply_fence": 0}, "reply_fence must be at least 1", "reply_fence"),
        (
            "bulkUpdateTickets",
            {"ticket_ids": [], "change": {"status": "open"}},
            "ticket_ids must not be empty",
            "ticket_ids",
        ),
        ("bulkUpdateTickets", {"ticket_ids": ["a"]}, "change is required", "change"),
        (
            "bulkUpdateTickets",
            {"ticket_ids": ["a", "a"], "change": {"status": "open"}},
            "ticket_ids has the same entry twice",
            "ticket_ids",
        ),
        (
            "bulkUpdateTickets",
            {"ticket_ids": ["a"], "change": {"priority": "soon"}},
            "change.priority must be one of low",
            "change.priority",
        ),
        (
            "setInboxSettings",
            {"thresholds": [{"after_minutes": 5}]},
            "thresholds.color is required",
            "thresholds.color",
        ),
        (
            "setInboxSettings",
            {"thresholds": [{"after_minutes": "5", "color": "#000000"}]},
            "thresholds.after_minutes must be a whole number",
            "thresholds.after_minutes",
        ),
        ("renewReplyLock", {"fence": True}, "fence must be a whole number", "fence"),
        ("renewReplyLock", {"fence": 2**63}, "fence must be at most", "fence"),
        ("createSession", {"login": "a"}, "password is required", "password"),
        ("createMailbox", {"port": 0}, "inbox_id is required", "inbox_id"),
        (
            "putAutoReply",
            {"hours": [{"weekday": 1, "start": "9", "end": "18:00"}]},
            "hours.start must match",
            "hours.start",
        ),
        ("sendDraft", {"status_after": "trash"}, "status_after must be one of", "status_after"),
        ("updateContact", {"custom": {"k": 1}}, "every entry of custom must be a string", "custom"),
        ("createPhoneMemoTicket", {"body": "x"}, "inbox_id is required", "inbox_id"),
        ("addPhoneMemo", {"body": "x", "inbox_id": "y"}, "unknown field 'inbox_id'", "inbox_id"),
    ],
)
def test_an_invalid_body_is_a_400_naming_the_field(
    operation_id: str, body: Any, message: str, field: str | None
) -> None:
    got_message, got_field = _refusal(operation_id, body)
    assert got_message.startswith(message), got_message
    assert got_field == field


@pytest.mark.parametrize(
    ("operation_id", "body"),
    [
        ("updateTicket", {"status": None, "priority": None, "category": None}),
        ("updateTicket", {"assignee_id": None, "comment": "", "reply_fence": 2**63 - 1}),
        ("bulkUpdateTickets", {"ticket_ids": ["a", "b"], "change": {"add_labels": ["x"]}}),
        ("createPhoneMemoTicket", {"inbox_id": "i", "body": "x", "direction": "outbound"}),
        ("sendDraft", {"send_at": None, "status_after": None, "fence": 1}),
        ("updateSmtpRoute", {"name": "n", "host": "h", "port": 25, "password": None}),
        ("submitForm", {"email": "a@b.example", "message": "hi"}),
    ],
)
def test_a_body_the_document_allows_passes(operation_id: str, body: Any) -> None:
    BODIES.check(operation_id, body)


def test_an_operation_without_a_json_body_is_not_checked() -> None:
    BODIES.check("listTickets", {"anything": 1})
    BODIES.check("createImport", b"bytes")


def test_whole_numbers_are_ints_and_lone_surrogates_are_found() -> None:
    assert _number("1.0") == 1 and isinstance(_number("1e3"), int)
    assert _number("1.5") == 1.5
    assert _bad_text({"a": ["ok", {"b": "x\ud800"}]}) == "a.b"
    assert _bad_text({"a\udfff": "x"}) == "body"
    assert _bad_text({"a": ["ok", "\U0001f600"]}) is None
